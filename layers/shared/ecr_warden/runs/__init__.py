"""Runs: reconcile, sweep and report over many registries (accounts x regions), fanned out on SQS FIFO.

A run starts with one `list` step per registry; listing a page of repositories stores the page's plan (the names
and ECR's next token, once: a retried step sends the same) and queues its `batch` steps (25 repositories, 5 for a
report) and the next page's `list` step, all in the registry's message group (`<account>#<region>`), so one
registry is worked on by one invocation at a time (ECR's API quotas are per account and region) while registries
proceed in parallel. Progress is counted once per step in the audit table; a failed step is retried by SQS and
parked in the run queue's dead-letter queue, from which a redrive resumes the run."""
