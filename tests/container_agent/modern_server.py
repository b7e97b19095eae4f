"""A stdio MCP server of the 2026-07-28 era, written with the official SDK (2.x), for the
bridge's tests: it changes its tools list and a resource on request, and asks its client
for input the 2026-07-28 way (an InputRequiredResult, retried with the answers).

Run inside the time server's image, which has the SDK: `python3 -c "$(cat modern_server.py)"`.
"""

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ElicitRequest, ElicitRequestFormParams, InputRequiredResult

app = MCPServer("modern-test", instructions="a test server of the 2026-07-28 era")
NOTE = {"text": "first"}


@app.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Adds a tool called `name` and tells listeners the list changed."""
    app.add_tool(lambda: name, name=name, description="added at run time")
    await ctx.notify_tools_changed()
    return f"added {name}"


@app.resource("memo://note")
def note() -> str:
    return NOTE["text"]


@app.tool()
async def write_note(text: str, ctx: Context) -> str:
    """Changes memo://note and tells its subscribers."""
    NOTE["text"] = text
    await ctx.notify_resource_updated("memo://note")
    return "written"


@app.tool()
async def greet(ctx: Context) -> "str | InputRequiredResult":
    """Asks the client for a name (elicitation), then greets it."""
    answers = ctx.input_responses or {}
    answer = answers.get("name")
    if answer is not None:
        content = getattr(answer, "content", None) or {}
        return f"hello {content.get('name', '?')} ({ctx.request_state})"
    ask = ElicitRequest(
        params=ElicitRequestFormParams(
            message="What is your name?",
            requested_schema={"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        )
    )
    return InputRequiredResult(input_requests={"name": ask}, request_state="round-1")


if __name__ == "__main__":
    app.run("stdio")
