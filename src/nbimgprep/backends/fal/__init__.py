"""The fal.ai backend, in three rooms:

* :mod:`.backend` -- :class:`FalBackend`: the key, the clients per event loop, the timeout, and
  one call from upload to download;
* :mod:`.queue` -- following a request through fal's queue (status, result, cancel);
* :mod:`.transfer` -- bytes up (data URI or fal storage) and down (the capped result download);
* :mod:`.failures` -- fal_client and httpx failures as our typed errors, without the key.
"""

from .backend import EndpointSpec, FalBackend

__all__ = ["EndpointSpec", "FalBackend"]
