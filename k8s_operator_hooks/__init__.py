"""PassGeni for Kubernetes: the ``k8s://`` secret store and a kopf operator.

* :mod:`k8s_operator_hooks.store`: ``KubernetesSecretStore`` for
  ``k8s://NAMESPACE/NAME#KEY`` (entry point ``passgeni.stores``/``k8s``).
* :mod:`k8s_operator_hooks.operator`: kopf handlers; run
  ``kopf run -m k8s_operator_hooks.operator --all-namespaces`` or ``passgeni operator``.
* :mod:`k8s_operator_hooks.cli`: the ``passgeni operator`` command (entry point
  ``passgeni.cli``/``operator``).

Nothing is imported here, so loading the store does not load kopf, and the
``kubernetes`` client is imported only when a store is opened.
"""
