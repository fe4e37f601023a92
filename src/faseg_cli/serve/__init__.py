"""``faseg serve``: the engine behind a local HTTP API and web page.

``service`` runs the model (one pass at a time, on batches), ``batcher`` gathers the
requests that arrive together into those batches (a bounded queue), ``forms`` turns an
upload into a request (or one clear 4xx message), ``access`` decides which Host and
Origin may use the server, ``app`` is the ASGI application and ``page.html`` the page it
serves, ``server`` runs it with uvicorn and stops it on a signal. Starlette, uvicorn and
python-multipart come with the ``serve`` extra and are imported only here.
"""
