package dev.pocketllm;

/**
 * Receives the library's log lines (PocketLlm.setLogListener): why a call failed, what a training session's data
 * lost on its way to examples (lines cut at the model's context, dropped as too short), the sample's size. Called on
 * the thread making the pocketllm call, possibly several threads at once; it must return quickly and must not call
 * pocketllm itself (such calls log nothing). An exception it throws is dropped.
 */
@FunctionalInterface
public interface LogListener {
  int DEBUG = 0;
  int INFO = 1;
  int WARN = 2;
  int ERROR = 3;

  void onLog(int level, String message);
}
