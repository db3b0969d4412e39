"""The one exception type for errors a user can act on, and the exit codes the CLI maps them to."""


class ExitCode:
    OK = 0
    FAILURE = 1          # a job or a check ran and failed
    USAGE = 2            # bad input: variable, OCID, file, option
    CONFIG = 3           # missing or invalid OCI config / key / auth
    NOT_FOUND = 4        # compartment, stack or job does not exist
    CONFLICT = 5         # the service refused because of the resource's state (409)
    SERVICE = 6          # throttled or server-side error after retries (429/5xx)
    TOO_LARGE = 7        # the stack zip is over Resource Manager's 11 MB limit
    ABORTED = 8          # the user answered "no" at the confirmation prompt
    INTERRUPTED = 130    # Ctrl-C: the job keeps running


class UserError(Exception):
    """An error the user can fix; `str()` says what to do. `exit_code` is one of ExitCode."""

    def __init__(self, message: str, exit_code: int = ExitCode.USAGE):
        super().__init__(message)
        self.exit_code = exit_code
