"""The OpenAI Agents SDK against kernelgate: a coding agent that hands off to a function-only agent with a
structured output type, in an OpenAIConversationsSession kept by kernelgate's Conversations API.

The model behind both agents is the fake upstream (Chat Completions), scripted turn by turn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from agents import (
    Agent,
    CodeInterpreterTool,
    OpenAIConversationsSession,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from pydantic import BaseModel

from gateway.testing import serve

from .conftest import upstream_settings
from .fake_upstream import FakeUpstream, Reply, fake_upstream


class Report(BaseModel):
    total: int
    note: str


@function_tool
def lookup(word: str) -> str:
    """Look a word up."""
    return f"{word}: a word"


@pytest.fixture
def gateway(data_dir: Path) -> Iterator[tuple[FakeUpstream, str]]:
    with fake_upstream() as (fake, _), serve(upstream_settings(fake, "chat", data_dir)) as base_url:
        yield fake, base_url


async def test_a_handoff_a_structured_output_and_a_conversation_session(gateway: tuple[FakeUpstream, str]) -> None:
    fake, base_url = gateway
    set_tracing_disabled(True)
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0) as client:
        model = OpenAIResponsesModel(model="m", openai_client=client)
        reporter = Agent(name="reporter", instructions="Report.", model=model, tools=[lookup], output_type=Report)
        coder = Agent(
            name="coder",
            instructions="Compute, then hand off.",
            model=model,
            tools=[CodeInterpreterTool(tool_config={"type": "code_interpreter", "container": {"type": "auto"}})],
            handoffs=[reporter],
        )
        session = OpenAIConversationsSession(openai_client=client)
        fake.script = [
            Reply(code="total = 6 * 7\nprint(total)"),
            Reply(function=("transfer_to_reporter", "{}")),
            Reply(text='{"total": 42, "note": "computed in the sandbox"}'),
        ]
        result = await Runner.run(coder, "What is six times seven?", session=session)
        assert result.final_output == Report(total=42, note="computed in the sandbox")
        assert result.last_agent.name == "reporter"
        assert fake.seen[0].tools == ["python", "transfer_to_reporter"]
        assert fake.seen[2].tools == ["lookup"]  # the function-only agent: no python tool
        assert fake.seen[2].body["response_format"]["type"] == "json_schema"

        fake.script = [Reply(text='{"total": 42, "note": "still"}')]
        again = await Runner.run(reporter, "And again?", session=session)
        assert again.final_output == Report(total=42, note="still")
        kept = await session.get_items()
        assert len(kept) > 4  # the first run's turns, kept by kernelgate, came back as history
        assert "What is six times seven?" in str(fake.seen[3].body["messages"])
