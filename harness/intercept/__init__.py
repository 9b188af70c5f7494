"""The user's own LLM calls, routed through harness's call path.

While a run executes a ``python:`` model (or a callable), and inside ``harness.replay(...)``
or a test marked ``@pytest.mark.harness``, every HTTP request the user's code sends through
httpx (the client under the ``openai``, ``anthropic`` and most other LLM SDKs) to an LLM
endpoint is answered by ``harness.calls.Caller`` like any call harness makes itself: from
the cache under the cache mode, over the wire on a miss, counted as the ``app`` kind.

- ``endpoints``: which URLs are LLM endpoints;
- ``wire``: an HTTP call as a keyed model request, and its stored answer as a response;
- ``credentials``: the secrets that must never be keyed, cached or written;
- ``scope``: which row, block or test a call belongs to (context variables);
- ``activate``: turning a scope on, for a row of a run or a block;
- ``routing``: what happens to each request; ``patch``: the hooks in httpx's transports;
- ``app_provider``: the provider that sends an intercepted call on a miss;
- ``network``: the network closed to all but loopback in replay.

Nothing is imported here, so importing a submodule stays cheap.
"""
