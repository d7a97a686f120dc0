package dev.pocketllm;

/**
 * Hears generated text as it is generated, on the thread that called generate: each piece is whole characters (one
 * spread over several tokens arrives with its last byte; bytes the model emits that form no character arrive as
 * U+FFFD), and the pieces together are the returned text. Return false to stop: generate then throws
 * PocketLlmException CANCELLED. An exception the listener throws stops generation and reaches the caller.
 */
@FunctionalInterface
public interface TokenListener {
  boolean onToken(String piece);
}
