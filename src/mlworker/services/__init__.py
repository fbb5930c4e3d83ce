"""Use cases: load data, call the domain, persist results, submit jobs.

The only layer that decides what runs inline and what becomes a job. Job types live here as
top-level functions registered with :func:`mlworker.jobs.registry.job_type`.
"""
