/**
 * The one table of Ephemera's error codes.
 *
 * Every error the control plane raises is an {@link EphemeraError} whose `code` is a key of
 * {@link ERROR_CODES}. Callers match on `code`, never on the message. Codes are stable: once
 * released, a code keeps its meaning; a new failure gets a new code. Every code is documented in
 * docs/ERRORS.md (a test enforces it).
 *
 * Messages follow one rule: say what was wrong, the value received, and what to do about it.
 */

/** How a code ends the CLI: 2 for a usage mistake the user can fix on the command line, 1 otherwise. */
export type ExitStatus = 1 | 2;

interface CodeInfo {
  /** One line: what kind of failure this is. */
  readonly summary: string;
  readonly exit: ExitStatus;
}

export const ERROR_CODES = {
  EPH_CLI_USAGE: {
    summary: 'the command line is malformed: unknown subcommand or flag, missing value, missing `--` or command',
    exit: 2,
  },
  EPH_CLI_BAD_SIZE: {
    summary: 'a size argument (e.g. --budget, --memory) is not a number of bytes with an optional unit',
    exit: 2,
  },
  EPH_CLI_BAD_ROOT: {
    summary: 'a managed root does not exist, is not a directory, or is not usable',
    exit: 2,
  },
  EPH_CLI_CONFLICT: {
    summary: 'two flags that exclude each other were both given',
    exit: 2,
  },
  EPH_BUILD_MISSING: {
    summary: 'a build output (build/ephemerad, build/libephemera.so, build/iobench) is missing',
    exit: 1,
  },
  EPH_RUN_DIR: {
    summary: 'the private run directory for the daemon could not be created',
    exit: 1,
  },
  EPH_RUN_LAUNCHER: {
    summary: 'Node\'s CLI handed a run to the native launcher (build/ephemera-run), which could not be started or cannot take that command line',
    exit: 1,
  },
  EPH_RUN_SPAWN: {
    summary: 'the command to run could not be started',
    exit: 1,
  },
  EPH_RUN_STATS_WRITE: {
    summary: 'the --stats file could not be written',
    exit: 1,
  },
  EPH_DAEMON_START: {
    summary: 'ephemerad exited or timed out before it reported ready',
    exit: 1,
  },
  EPH_DAEMON_CONNECT: {
    summary: "the daemon's control socket could not be reached",
    exit: 1,
  },
  EPH_DAEMON_PROTOCOL: {
    summary: 'the daemon sent something that is not a valid control-protocol message',
    exit: 1,
  },
  EPH_DAEMON_REPLY: {
    summary: 'the daemon answered a request with an error (its own code is in `daemonCode`)',
    exit: 1,
  },
  EPH_DAEMON_CLOSED: {
    summary: 'the control connection closed while a request was waiting for its answer',
    exit: 1,
  },
  EPH_DAEMON_TIMEOUT: {
    summary: 'the daemon did not answer a request in time',
    exit: 1,
  },
  EPH_STATS_FILE: {
    summary: 'a stats file (ephemera run --stats FILE) could not be read or is not JSON',
    exit: 1,
  },
  EPH_BENCH_NEEDS_ROOT: {
    summary: 'a benchmark contender needs root (e.g. to mount a tmpfs) and was skipped',
    exit: 1,
  },
  EPH_BENCH_FAILED: {
    summary: 'a benchmark program failed or printed output that could not be parsed',
    exit: 1,
  },
  EPH_CGROUP_NOT_ROOT: {
    summary: 'creating or writing a memory cgroup (e.g. for --memory) needs root',
    exit: 1,
  },
  EPH_CGROUP_UNAVAILABLE: {
    summary: 'no cgroup hierarchy with the memory controller is mounted',
    exit: 1,
  },
  EPH_CGROUP_NOT_WRITABLE: {
    summary: 'the memory cgroup hierarchy is read-only or a cgroup directory could not be created',
    exit: 1,
  },
  EPH_CGROUP_EXISTS: {
    summary: 'a cgroup with the requested name already exists',
    exit: 1,
  },
  EPH_CGROUP_IO: {
    summary: 'a cgroup control file could not be read or written, or held something unexpected',
    exit: 1,
  },
  EPH_LIMIT_INVALID: {
    summary: 'a memory limit or cgroup name is not acceptable (not a positive integer, bad characters)',
    exit: 1,
  },
  EPH_LIMIT_BELOW_USAGE: {
    summary: 'the kernel refused a memory limit below what the instance uses and cannot reclaim (cgroup v1 EBUSY)',
    exit: 1,
  },
  EPH_DOCKER_API: {
    summary: 'the Docker Engine API could not be reached or answered with an error',
    exit: 1,
  },
  EPH_RESIZE_FAILED: {
    summary: 'an instance could not be resized safely; its limit was left where it was',
    exit: 1,
  },
  EPH_IMAGE_BUILD: {
    summary: 'the function image could not be built from Debian packages (images/build-rootfs.sh failed)',
    exit: 1,
  },
  EPH_EVAL_NO_SANDBOX: {
    summary: 'the evaluation found neither a Docker engine nor a writable memory cgroup to run functions in',
    exit: 1,
  },
  EPH_EVAL_DIGEST_MISMATCH: {
    summary: 'a workload produced different output digests in two storage modes',
    exit: 1,
  },
  EPH_API_AUTH: {
    summary: 'an API request had no Basic authorization, or its uuid:key is not a tenant\'s (HTTP 401)',
    exit: 1,
  },
  EPH_API_FORBIDDEN: {
    summary: 'an API request touched another tenant\'s namespace or action (HTTP 403)',
    exit: 1,
  },
  EPH_API_NOT_FOUND: {
    summary: 'an API request named an action, activation, namespace or route that does not exist (HTTP 404)',
    exit: 1,
  },
  EPH_API_BAD_REQUEST: {
    summary: 'an API request was malformed: bad JSON, an invalid name, limit, exec or parameter (HTTP 400)',
    exit: 1,
  },
  EPH_API_CONFLICT: {
    summary: 'an action was created where one exists already, without ?overwrite=true (HTTP 409)',
    exit: 1,
  },
  EPH_API_TOO_LARGE: {
    summary: 'an API request body was over the 1 MB limit (HTTP 413)',
    exit: 1,
  },
  EPH_API_MEDIA_TYPE: {
    summary: 'an API request body was not sent as application/json (HTTP 415)',
    exit: 1,
  },
  EPH_API_INTERNAL: {
    summary: 'the controller failed while serving a request; the activation or change may not have happened (HTTP 500)',
    exit: 1,
  },
  EPH_ACTION_FAILED: {
    summary: 'a blocking invoke ended in an application or developer error (HTTP 502, the body is the activation record)',
    exit: 1,
  },
  EPH_STORE: {
    summary: 'the platform\'s state directory or its SQLite store could not be opened or written',
    exit: 1,
  },
  EPH_TENANT_NAME: {
    summary: 'a tenant (namespace) name given on the command line is not valid or is reserved',
    exit: 2,
  },
  EPH_PLATFORM_START: {
    summary: '`ephemera up` could not start a part of the platform (Docker, a node agent, the HTTP port)',
    exit: 1,
  },
  EPH_VIEW_UNAUTHENTICATED: {
    summary: 'a request to /metrics or the dashboard carried no key, or a key the controller does not know',
    exit: 1,
  },
  EPH_VIEW_FORBIDDEN: {
    summary: "the key is valid but may not see this view (a tenant's key on /metrics, which needs the operator key)",
    exit: 1,
  },
  EPH_VIEW_SOURCE: {
    summary: 'the controller could not read the cluster state (node agents, Managers) to answer a view',
    exit: 1,
  },
  EPH_STATUS_PROPS: {
    summary: 'the wsk props file for `ephemera status` is missing, unreadable, or lacks APIHOST or AUTH',
    exit: 2,
  },
  EPH_STATUS_CONTROLLER: {
    summary: 'the controller named by APIHOST could not be reached, timed out, or answered with an error',
    exit: 1,
  },
  EPH_LOG_LEVEL: {
    summary: 'a log level (EPHEMERA_LOG_LEVEL) is not one of fatal, error, warn, info, debug, trace, silent',
    exit: 2,
  },
  EPH_NODE_BAD_REQUEST: {
    summary: 'a request to the node agent API has a missing, malformed or out-of-range field',
    exit: 2,
  },
  EPH_NODE_UNKNOWN_CONTAINER: {
    summary: 'the node agent knows no container with that id',
    exit: 1,
  },
  EPH_NODE_CONFLICT: {
    summary: 'the request does not fit the container state (already registered, already initialized, busy)',
    exit: 1,
  },
  EPH_NODE_FULL: {
    summary: 'the node has not enough unallocated memory (N_lim) for the new container',
    exit: 1,
  },
  EPH_NODE_CROSS_TENANT: {
    summary: "a Manager asked to move memory between two tenants' containers, and the agent refused",
    exit: 1,
  },
  EPH_NODE_MOVE_FAILED: {
    summary: 'a memory move could not be carried out; both limits were left as they were before it',
    exit: 1,
  },
  EPH_NODE_RUNTIME: {
    summary: "the action runtime in a function container did not answer, or answered outside OpenWhisk's protocol",
    exit: 1,
  },
  EPH_NODE_UNREACHABLE: {
    summary: 'the node agent API socket could not be reached, or it answered something that is not its protocol',
    exit: 1,
  },
  EPH_NODE_STATE_DIR: {
    summary: 'the node agent state directory cannot be used (not creatable, socket path too long, another agent owns it)',
    exit: 1,
  },
  EPH_MANAGER_CONFIG: {
    summary: "a Tenant Manager's configuration is invalid (sharing scope, threshold, margin, engine minimum)",
    exit: 1,
  },
  EPH_MANAGER_EVENT: {
    summary: 'a Tenant Manager was given an event that does not fit its state (unknown or repeated id, another tenant, bad size)',
    exit: 1,
  },
  EPH_MANAGER_PROTOCOL: {
    summary: 'a line on a Manager socket is not a valid request or reply of the Manager protocol',
    exit: 1,
  },
  EPH_MANAGER_START: {
    summary: 'a Manager process exited or timed out before it reported ready',
    exit: 1,
  },
  EPH_GUARD_SENTINEL: {
    summary: "the node agent's guard sentinel did not start, or a line on its pipe was not a command",
    exit: 1,
  },
  EPH_GUARD_LEASE: {
    summary: "the node agent's OOM guard lease (a FIFO in its state directory) could not be made, opened or linked into a run directory",
    exit: 1,
  },
  EPH_MANAGER_UNAVAILABLE: {
    summary: "a Manager process's socket could not be reached, or closed while a request waited",
    exit: 1,
  },
  EPH_MANAGER_TIMEOUT: {
    summary: 'a Manager process did not answer a request in time',
    exit: 1,
  },
  EPH_SCHED_BAD_INPUT: {
    summary: 'a task profile, node report or placement given to the scheduler is malformed (not whole bytes, empty name, reused id)',
    exit: 1,
  },
  EPH_SCHED_UNKNOWN_POLICY: {
    summary: 'the scheduler policy named (e.g. --scheduler) is not one of ephemera, most-free',
    exit: 2,
  },
  EPH_SCHED_NEVER_FITS: {
    summary: "a task's memory limit is larger than every node's, so waiting cannot help",
    exit: 1,
  },
  EPH_SCHED_QUEUE_FULL: {
    summary: 'no node fits the task now and the wait queue is full (HTTP 503)',
    exit: 1,
  },
  EPH_SCHED_WAIT_TIMEOUT: {
    summary: 'a task waited in the queue for a node longer than its bound (HTTP 503)',
    exit: 1,
  },
  EPH_PROFILE_INVALID: {
    summary: 'a profile, profile measurement or ephemera.profile-inputs annotation is malformed',
    exit: 1,
  },
  EPH_PROFILE_RUN_FAILED: {
    summary: 'a profiling run of an action on one of its dummy inputs failed or timed out',
    exit: 1,
  },
  EPH_EXTENDER_BAD_REQUEST: {
    summary: 'a kube-scheduler extender request is not valid ExtenderArgs JSON (HTTP 400)',
    exit: 1,
  },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface EphemeraErrorOptions {
  /** The underlying error, kept for diagnosis. */
  readonly cause?: unknown;
  /** Structured detail, e.g. the daemon's own error code. */
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** An error with a stable {@link ErrorCode}. */
export class EphemeraError extends Error {
  readonly code: ErrorCode;
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: EphemeraErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EphemeraError';
    this.code = code;
    this.detail = options.detail ?? {};
  }

  /** The CLI's exit status for this error. */
  get exitStatus(): ExitStatus {
    return ERROR_CODES[this.code].exit;
  }
}

/** True when `err` is an {@link EphemeraError}, optionally with the given code. */
export function isEphemeraError(err: unknown, code?: ErrorCode): err is EphemeraError {
  return err instanceof EphemeraError && (code === undefined || err.code === code);
}
