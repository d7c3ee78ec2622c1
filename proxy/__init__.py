"""smi-proxy: the reference data plane of smi-bridge.

It serves the ``ProxyConfig`` that ``smi-bridge translate --to proxy`` writes: one listener per
Service port (bound on the Service's cluster IP, like kube-proxy), caller identity from mTLS,
source address or (insecure) a header, and every routing and access answer taken from
``smi_bridge.semantics`` so that the proxy enforces exactly the meaning the translators emit.

This package may import only ``smi_bridge.ir``, ``smi_bridge.semantics``, ``smi_bridge.regex``,
``smi_bridge.diagnostics`` and third-party libraries; a test reads the imports and enforces it.
"""
