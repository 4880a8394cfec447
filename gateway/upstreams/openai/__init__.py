"""OpenAI's two APIs as upstreams: Chat Completions (`chat`) and the Responses API (`responses`)."""
