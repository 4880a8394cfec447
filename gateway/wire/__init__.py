"""Client wire formats, one folder each: routes, request parsing, rendering and error bodies only.

    openai/    OpenAI's Responses (code_interpreter), Containers, Container Files and Files APIs

Next: anthropic/ (the code_execution server tool) and gemini/ (codeExecution), on the same core.
"""
