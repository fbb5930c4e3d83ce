"""Building blocks of the ``external_endpoint`` engine: HTTP scoring of candidates.

- :mod:`.config`: the engine's configuration and :data:`.config.SECRET_FIELDS`;
- :mod:`.payload`: candidates as JSON instances;
- :mod:`.auth`: API key, bearer token and AWS Signature V4 authentication;
- :mod:`.transport`: one JSON POST, every failure as :class:`.transport.EndpointCallError`;
- :mod:`.mapping`: dot-path extraction and validation of scores and explanations;
- :mod:`.cache`: the per-instance TTL cache;
- :mod:`.circuit_breaker`: the consecutive-failure breaker;
- :mod:`.client`: all of it together for one live endpoint.

Importing this package loads httpx and botocore, which is why :mod:`mlworker.engines` imports
the engine only when an external endpoint model is used.
"""
