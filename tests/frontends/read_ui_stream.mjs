// The AI SDK's own client reads a deltaflow relay: DefaultChatTransport (its fetch, headers check
// and chunk schema) then readUIMessageStream, which builds the UI message as useChat does.
// Usage: node read_ui_stream.mjs <api url> <request JSON> [resume]
// Prints {"message": <the last UI message>, "chunks": [<chunk types>], "error": <text or null>}.
import { DefaultChatTransport, readUIMessageStream } from "ai";

const [api, requestJson, mode] = process.argv.slice(2);
const request = JSON.parse(requestJson);
const { id: chatId, messages, ...extra } = request;
const transport = new DefaultChatTransport({ api });
const chunks = [];
let error = null;

const stream =
  mode === "resume"
    ? await transport.reconnectToStream({ chatId })
    : await transport.sendMessages({
        trigger: "submit-message",
        chatId,
        messageId: undefined,
        messages,
        abortSignal: undefined,
        body: extra,
      });

let message = null;
if (stream !== null) {
  const seen = stream.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        chunks.push(chunk.type);
        controller.enqueue(chunk);
      },
    }),
  );
  for await (const built of readUIMessageStream({ stream: seen, onError: (e) => (error = String(e)) })) {
    message = built;
  }
}
process.stdout.write(JSON.stringify({ message, chunks, error }));
