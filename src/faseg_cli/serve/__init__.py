"""``faseg serve``: the engine behind a local HTTP API and web page.

``service`` runs the model (one pass at a time, on batches), ``batcher`` gathers the
requests that arrive together into those batches, ``forms`` turns an upload into a
request (or one clear 4xx message), ``app`` is the ASGI application and ``page.html``
the page it serves. Starlette, uvicorn and python-multipart come with the ``serve``
extra and are imported only here.
"""
