package dev.pocketllm;

/** A failed call: the library's status code (pllm_status) and its message. */
public class PocketLlmException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  public static final int INVALID_ARGUMENT = 1, NOT_FOUND = 2, IO = 3, CORRUPT = 4, MISMATCH = 5, UNSUPPORTED = 6,
      OUT_OF_RANGE = 7, CANCELLED = 8, INTERNAL = 9, MEMORY_BUDGET = 10, BUSY = 11;
  private final int status;

  public PocketLlmException(int status, String message) {
    super(message);
    this.status = status;
  }

  /** The pllm_status value; compare with the constants of this class. */
  public int status() { return status; }

  public boolean isCancelled() { return status == CANCELLED; }
}
