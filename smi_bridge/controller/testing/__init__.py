"""Test beds for the controller that ship with it: a Kubernetes API server fake on 127.0.0.1.

``fakeapi.FakeKubeAPI`` speaks the API server's HTTP protocol (discovery, CRDs, CRUD with
resourceVersions, list/watch, server-side apply, Leases, Events) closely enough that the official
``kubernetes`` client, ``kubectl`` and the controller talk to it unchanged; the contract suite in
``tests/controller`` runs the same scenarios against it and a real kube-apiserver to keep it honest.
"""
