// Who is calling (viewer) and the API tokens (ADMIN only).
import { builder } from "../builder.js";
import { me } from "../context.js";
import { requireAdmin } from "../../auth/policy.js";
import type { TokenInfo } from "../../auth/tokens.js";
import { GraphQLError } from "graphql";

const RoleEnum = builder.enumType("Role", { values: ["USER", "ADMIN"] as const, description: "USER: own jobs only. ADMIN: every job, tokens, takeOwnership." });

const ViewerRef = builder.objectRef<{ user: string; role: "USER" | "ADMIN" }>("Viewer").implement({
  fields: (t) => ({
    user: t.exposeString("user"),
    role: t.field({ type: RoleEnum, resolve: (v) => v.role }),
  }),
});

const ApiTokenRef = builder.objectRef<TokenInfo>("ApiToken").implement({
  description: "An API token's record. The token itself is shown only once, by createApiToken.",
  fields: (t) => ({
    id: t.exposeID("id"),
    user: t.exposeString("user"),
    role: t.field({ type: RoleEnum, resolve: (k) => k.role }),
    description: t.exposeString("description"),
    createdAt: t.field({ type: "DateTime", resolve: (k) => k.createdAt }),
    createdBy: t.exposeString("createdBy", { nullable: true }),
    revokedAt: t.field({ type: "DateTime", nullable: true, resolve: (k) => k.revokedAt }),
    lastUsedAt: t.field({ type: "DateTime", nullable: true, resolve: (k) => k.lastUsedAt }),
  }),
});

const CreateApiTokenInput = builder.inputType("CreateApiTokenInput", {
  fields: (t) => ({
    user: t.string({ required: true, description: "1 to 64 characters: letters, digits, '.', '_', '-'. Also the user's directory under the storage root." }),
    role: t.field({ type: RoleEnum, required: true }),
    description: t.string({ required: false }),
  }),
});

const CreateApiTokenPayload = builder.objectRef<{ token: string; info: TokenInfo }>("CreateApiTokenPayload").implement({
  fields: (t) => ({
    token: t.exposeString("token", { description: "The bearer token. Shown only this once: only its hash is stored." }),
    apiToken: t.field({ type: ApiTokenRef, resolve: (p) => p.info }),
  }),
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

builder.queryFields((t) => ({
  viewer: t.field({ type: ViewerRef, description: "The caller, as its token says.", resolve: (_r, _a, ctx) => me(ctx) }),
  apiTokens: t.field({
    type: [ApiTokenRef],
    description: "Every API token (ADMIN only), revoked ones included.",
    resolve: (_r, _a, ctx) => {
      requireAdmin(me(ctx), "apiTokens");
      return ctx.tokens.list();
    },
  }),
}));

builder.mutationFields((t) => ({
  createApiToken: t.field({
    type: CreateApiTokenPayload,
    description: "Creates a token for a user (ADMIN only). The token is in the payload, once.",
    args: { input: t.arg({ type: CreateApiTokenInput, required: true }) },
    resolve: (_r, { input }, ctx) => {
      const p = me(ctx);
      requireAdmin(p, "createApiToken");
      return ctx.tokens.create(input, p.user);
    },
  }),
  revokeApiToken: t.field({
    type: ApiTokenRef,
    description: "Revokes a token at once, everywhere (ADMIN only): its requests fail and its WebSockets close.",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, args, ctx) => {
      requireAdmin(me(ctx), "revokeApiToken");
      if (!UUID.test(args.id)) throw new GraphQLError(`not a valid token id: ${JSON.stringify(args.id.slice(0, 60))}`, { extensions: { code: "BAD_USER_INPUT" } });
      return ctx.tokens.revoke(args.id.toLowerCase());
    },
  }),
}));
