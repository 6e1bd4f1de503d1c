// Reading an answer's event stream (the chat and compare pages), the HTTP interface's
// "answer stream" in the README.
"use strict";

// Server-Sent Events over fetch(): EventSource cannot POST or send the CSRF header. Each event
// is { event, data, id }: `id` (a number, or null) is where a new subscription resumes from.
window.AnswerEvents = {
  async *read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        let id = null;
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
          else if (line.startsWith("id:")) id = Number(line.slice(3).trim());
        }
        if (data.length) yield { event, data: JSON.parse(data.join("\n")), id };
      }
    }
  },
};
