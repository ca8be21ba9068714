"""Running a job: the driver, the plan-time checks, the actor pool (executor), the worker and
its shard writer, finalize, repair, progress, the run log and `submit`."""
