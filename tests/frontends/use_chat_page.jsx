// A chat page on useChat from @ai-sdk/react, as a web team writes one, against deltaflow's durable
// endpoint in the AI SDK's format. The chat id is in the address; `resume: true` makes useChat GET
// the chat's running answer when the page (re)loads, which the durable log replays from its start.
import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport } from "ai";
import { useEffect, useRef } from "react";
import { createRoot } from "react-dom/client";

// ?api= chooses the endpoint: /api/chat (a structured answer) or /api/loop (a tool loop, whose tools run
// on the server and whose outputs the stream brings)
const query = new URLSearchParams(location.search);
const chatId = query.get("chat");
const api = query.get("api") ?? "/api/chat";
const transport = new DefaultChatTransport({ api });
window.__partials = [];

function JsonTree({ value }) {
  if (Array.isArray(value)) {
    return <ul>{value.map((item, index) => <li key={index}><JsonTree value={item} /></li>)}</ul>;
  }
  if (value !== null && typeof value === "object") {
    return (
      <ul>
        {Object.entries(value).map(([key, item]) => (
          <li key={key}><span className="key">{key}:</span> <JsonTree value={item} /></li>
        ))}
      </ul>
    );
  }
  return <span className="scalar">{JSON.stringify(value)}</span>;
}

function Part({ part }) {
  switch (part.type) {
    case "reasoning":
      return <details open className="reasoning"><summary>thinking</summary><p>{part.text}</p></details>;
    case "text":
      return <pre className="text">{part.text}</pre>;
    case "dynamic-tool":
      return (
        <div className="tool" data-state={part.state}>
          <strong>{part.toolName}</strong>(<code className="input">{JSON.stringify(part.input)}</code>)
          <em> {part.state}</em>
          {part.state === "output-available" && <code className="output">{JSON.stringify(part.output)}</code>}
          {part.state === "output-error" && <code className="error">{part.errorText}</code>}
        </div>
      );
    case "data-partial-object":
      return <div className="partial"><h3>as it grows</h3><JsonTree value={part.data} /></div>;
    case "data-object":
      return <div className="final"><h3>validated</h3><JsonTree value={part.data} /></div>;
    default:
      return null;
  }
}

function Chat() {
  const { messages, sendMessage, status, error } = useChat({ id: chatId, transport, resume: true });
  const sent = useRef(false);
  useEffect(() => {
    // the first visit asks; a reload must not ask again, only resume
    if (!sent.current && !sessionStorage.getItem(chatId)) {
      sent.current = true;
      sessionStorage.setItem(chatId, "sent");
      sendMessage({ text: "Summarise the front-ends" });
    }
  }, []);
  const assistant = messages.filter((message) => message.role === "assistant").at(-1);
  const partial = assistant?.parts.find((part) => part.type === "data-partial-object");
  useEffect(() => {
    if (partial) window.__partials.push(JSON.stringify(partial.data));
  }, [partial && JSON.stringify(partial.data)]);
  // the answer's last part: the validated object, or a tool loop's text after its tools' outputs
  const last = api === "/api/chat" ? "data-object" : "text";
  const finished = status === "ready" && assistant?.parts.some((part) => part.type === last);
  return (
    <main data-status={status} data-finished={finished ? "yes" : undefined}>
      <h1>useChat on deltaflow</h1>
      <p id="status">{status}{error ? `: ${error.message}` : ""}</p>
      {messages.map((message) => (
        <section key={message.id} className={message.role}>
          {message.role === "user"
            ? message.parts.map((part, index) => <p key={index}>{part.text}</p>)
            : message.parts.map((part, index) => <Part key={index} part={part} />)}
        </section>
      ))}
    </main>
  );
}

createRoot(document.getElementById("root")).render(<Chat />);
