/** Reads a response body to its end: its text as UTF-8, and how many reads it took. */
export async function readBody(
  stream: ReadableStream<Uint8Array>,
): Promise<{ text: string; reads: number }> {
  const decoder = new TextDecoder();
  let text = '';
  let reads = 0;
  for await (const chunk of stream) {
    text += decoder.decode(chunk, { stream: true });
    reads++;
  }
  return { text: text + decoder.decode(), reads };
}
