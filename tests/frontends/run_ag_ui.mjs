// AG-UI's own client reads a deltaflow relay: HttpAgent.runAgent (its fetch, SSE parser, event
// schemas and sequence checks, then its message and state reducers), or connectAgent for a
// reconnection, through AG-UI's connect() extension point over the same HTTP machinery.
// Usage: node run_ag_ui.mjs <url> <RunAgentInput JSON> [connect <stream url>]
// Prints {"messages": [...], "state": {...}, "events": [<event types>], "finished": <RUN_FINISHED or null>, "error": ...}.
import { HttpAgent, runHttpRequest, transformHttpEventStream } from "@ag-ui/client";

const [url, inputJson, mode, streamUrl] = process.argv.slice(2);
const input = JSON.parse(inputJson);

class ReconnectingAgent extends HttpAgent {
  connect() {
    const request = () => fetch(streamUrl, { method: "GET", headers: { accept: "text/event-stream" } });
    return transformHttpEventStream(runHttpRequest(request));
  }
}

const Agent = mode === "connect" ? ReconnectingAgent : HttpAgent;
const agent = new Agent({ url, threadId: input.threadId, initialMessages: input.messages, initialState: input.state ?? {} });
const events = [];
let finished = null;
let error = null;
const subscriber = {
  onEvent: ({ event }) => {
    events.push(event.type);
    if (event.type === "RUN_FINISHED") finished = event;
  },
  onRunErrorEvent: ({ event }) => {
    error = { message: event.message, code: event.code ?? null };
  },
};
try {
  if (mode === "connect") await agent.connectAgent({ runId: input.runId }, subscriber);
  else await agent.runAgent({ runId: input.runId, tools: input.tools ?? [], forwardedProps: input.forwardedProps ?? {} }, subscriber);
} catch (thrown) {
  error = error ?? { message: String(thrown), code: null };
}
process.stdout.write(JSON.stringify({ messages: agent.messages, state: agent.state, events, finished, error }));
