"""The models behind a response: kernelgate/exec, and the upstream provider APIs kernelgate speaks.

    router.py       a request's `model` name -> a Model (kernelgate/exec, a named provider, the default)
    registry.py     one line per provider API: its client module, its built-in provider's variables
    providers.py    a provider (server, API, key) from the providers file or built in
    openai/         Chat Completions and the Responses API, over the openai SDK
    anthropic.py    Anthropic's Messages API;  gemini.py  the Gemini API
    python_tool.py  the python tool as every API offers it, and a result as the model reads it
    arguments.py    a call's JSON arguments decoded to code as they stream
    cassette.py     record and replay upstream exchanges
    exec_model.py   kernelgate/exec, the deterministic built-in model

A new provider API is one module here and one line in registry.py. Nothing is imported here: the
SDKs load on first use.
"""
