"""The cloud side: a thin client for Seam's API and the models of what it returns.

Why not the official ``seam`` SDK (see docs/cloud.md): it drops unknown fields from responses
(we must keep them), retries on its own schedule (we must honour ``Retry-After`` and back off on
our terms), and hides the ``Date`` header we use to check the gateway's clock. The SDK is still
used in the test suite to prove our fake cloud answers in shapes it accepts.
"""
