"""The smi-bridge controller: SMI objects in a cluster, kept translated into one mesh's configuration.

Modules: ``kubeapi`` (the async API client), ``informer`` (list+watch caches), ``desired`` (the CLI's
pipeline over cached objects), ``reconciler`` (apply, prune, finalizers, Events), ``events``,
``leader`` (Lease election), ``health`` and ``telemetry`` (probes and metrics), ``run`` (wiring),
``cli`` (the ``controller`` subcommand), ``testing`` (a fake API server for tests).
"""
