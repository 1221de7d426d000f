// Assembles the schema. Importing a type module registers its types and fields with the builder.
import { builder } from "../builder.js";
import "./enums.js";
import "./job.js";
import "./events.js";
import "./auth.js";
import "./batch.js";
import { installJobPageFastPath } from "./job-page.js";

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

export const schema = builder.toSchema({ sortSchema: true });
installJobPageFastPath(schema);
