import { builder } from "../builder.js";
import { JobState, JobType, JobPriority, ErrorContext, JobEventKind } from "../../generated/prisma/enums.js";

export const JobStateEnum = builder.enumType(JobState, {
  name: "JobState",
  description: "The BITS job states (BG_JOB_STATE).",
});
export const JobTypeEnum = builder.enumType(JobType, { name: "JobType" });
export const JobPriorityEnum = builder.enumType(JobPriority, {
  name: "JobPriority",
  description: "FOREGROUND > HIGH > NORMAL > LOW; a higher priority pre-empts a lower one.",
});
export const ErrorContextEnum = builder.enumType(ErrorContext, {
  name: "ErrorContext",
  description: "Where an error happened (BITS BG_ERROR_CONTEXT).",
});
export const JobEventKindEnum = builder.enumType(JobEventKind, { name: "JobEventKind" });
