// Every GraphQL operation the CLI sends, in one place. Each is a typed document (gql.tada): a field
// that is not in schema.graphql, or a variable of the wrong type, fails `tsc`.
import { graphql } from "./graphql.js";

export const JobErrorFields = graphql(`
  fragment JobErrorFields on JobError {
    code
    message
    context
    httpStatus
    file {
      remoteUrl
      localPath
    }
  }
`);

/** What list prints per job. */
export const JobSummaryFields = graphql(
  `
    fragment JobSummaryFields on Job {
      id
      displayName
      state
      priority
      owner
      errorCount
      retryAt
      progress {
        bytesTotal
        bytesTransferred
        filesTotal
        filesTransferred
      }
      times {
        createdAt
        modifiedAt
        transferCompletedAt
      }
      error {
        ...JobErrorFields
      }
    }
  `,
  [JobErrorFields],
);

/** What info prints: every property. */
export const JobDetailFields = graphql(
  `
    fragment JobDetailFields on Job {
      ...JobSummaryFields
      description
      type
      minimumRetryDelay
      noProgressTimeout
      maximumDownloadTime
      maxBytesPerSecond
      hasCredentials
      httpHeaderNames
    }
  `,
  [JobSummaryFields],
);

export const FileFields = graphql(`
  fragment FileFields on File {
    id
    position
    remoteUrl
    localPath
    sha256
    bytesTotal
    bytesTransferred
    transferred
    completed
  }
`);

/** What a mutation prints: the job's new state and its warnings. */
export const PayloadFields = graphql(`
  fragment PayloadFields on JobPayload {
    warnings
    job {
      id
      displayName
      state
      owner
    }
  }
`);

// ---- queries -------------------------------------------------------------------------------------

export const EventCursorQuery = graphql(`
  query EventCursor {
    eventCursor
  }
`);

export const ViewerQuery = graphql(`
  query Viewer {
    viewer {
      user
      role
    }
  }
`);

export const JobsQuery = graphql(
  `
    query Jobs($filter: JobFilter, $first: Int, $after: String) {
      jobs(filter: $filter, first: $first, after: $after) {
        totalCount
        pageInfo {
          hasNextPage
          endCursor
        }
        edges {
          cursor
          node {
            ...JobSummaryFields
          }
        }
      }
    }
  `,
  [JobSummaryFields],
);

export const JobQuery = graphql(
  `
    query Job($id: ID!, $filesFirst: Int, $filesAfter: String) {
      job(id: $id) {
        ...JobDetailFields
        files(first: $filesFirst, after: $filesAfter) {
          totalCount
          pageInfo {
            hasNextPage
            endCursor
          }
          edges {
            node {
              ...FileFields
            }
          }
        }
      }
    }
  `,
  [JobDetailFields, FileFields],
);

export const ApiTokensQuery = graphql(`
  query ApiTokens {
    apiTokens {
      id
      user
      role
      description
      createdAt
      createdBy
      lastUsedAt
      revokedAt
    }
  }
`);

// ---- mutations -----------------------------------------------------------------------------------

export const CreateJobMutation = graphql(
  `
    mutation CreateJob($input: CreateJobInput!) {
      createJob(input: $input) {
        ...PayloadFields
      }
    }
  `,
  [PayloadFields],
);

export const AddFilesMutation = graphql(
  `
    mutation AddFiles($jobId: ID!, $files: [FileInput!]!) {
      addFiles(jobId: $jobId, files: $files) {
        ...PayloadFields
      }
    }
  `,
  [PayloadFields],
);

export const ResumeJobMutation = graphql(
  `
    mutation ResumeJob($id: ID!) {
      resumeJob(id: $id) {
        ...PayloadFields
      }
    }
  `,
  [PayloadFields],
);

export const SuspendJobMutation = graphql(
  `
    mutation SuspendJob($id: ID!) {
      suspendJob(id: $id) {
        ...PayloadFields
      }
    }
  `,
  [PayloadFields],
);

export const CompleteJobMutation = graphql(
  `
    mutation CompleteJob($id: ID!) {
      completeJob(id: $id) {
        ...PayloadFields
        job {
          files(first: 200) {
            edges {
              node {
                localPath
                completed
              }
            }
          }
        }
      }
    }
  `,
  [PayloadFields],
);

export const CancelJobMutation = graphql(
  `
    mutation CancelJob($id: ID!) {
      cancelJob(id: $id) {
        ...PayloadFields
      }
    }
  `,
  [PayloadFields],
);

export const UpdateJobMutation = graphql(
  `
    mutation UpdateJob($id: ID!, $input: UpdateJobInput!) {
      updateJob(id: $id, input: $input) {
        ...PayloadFields
      }
    }
  `,
  [PayloadFields],
);

export const CreateApiTokenMutation = graphql(`
  mutation CreateApiToken($input: CreateApiTokenInput!) {
    createApiToken(input: $input) {
      token
      apiToken {
        id
        user
        role
        description
        createdAt
      }
    }
  }
`);

export const RevokeApiTokenMutation = graphql(`
  mutation RevokeApiToken($id: ID!) {
    revokeApiToken(id: $id) {
      id
      user
      role
      revokedAt
    }
  }
`);

// ---- subscriptions -------------------------------------------------------------------------------

export const JobStateChangedSubscription = graphql(
  `
    subscription JobStateChanged($jobId: ID, $after: String) {
      jobStateChanged(jobId: $jobId, after: $after) {
        cursor
        at
        kind
        actor
        previousState
        state
        error {
          ...JobErrorFields
        }
        job {
          id
          displayName
          owner
          progress {
            bytesTotal
            bytesTransferred
            filesTotal
            filesTransferred
          }
        }
      }
    }
  `,
  [JobErrorFields],
);

export const JobProgressSubscription = graphql(`
  subscription JobProgress($jobId: ID) {
    jobProgress(jobId: $jobId) {
      jobId
      state
      at
      bytesTransferred
      bytesTotal
      bytesPerSecond
      filesTransferred
      filesTotal
    }
  }
`);
