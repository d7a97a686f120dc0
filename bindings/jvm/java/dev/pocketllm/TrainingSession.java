package dev.pocketllm;

/**
 * Fine-tuning of a {@link Model} in place, logged to a run directory so a killed app resumes to the same weights
 * (open a session on the same run directory with a freshly loaded model). Close it before the model.
 */
public final class TrainingSession implements AutoCloseable {
  /**
   * What to train on and how; fields left as they are take the library's defaults: null task, labels and trainable,
   * batchSize 0 and lr 0 take the recipe of the task and preset (docs/training.md, "Default recipes"), as
   * {@code pocketllm finetune} with no tuning options. preset "sst2" or "agnews" makes the task "classify" with the
   * preset's template, label words and recipe; kShot draws that many examples per label with dataSeed (0: all).
   */
  public static final class Options {
    public String runDir, dataPath, evalDataPath, task, labels, trainable, preset;
    public int steps = 100, batchSize = 0, maxLength = 256, kShot = 0;
    public float lr = 0, eps = 1e-3f;
    public long seed, dataSeed;
  }

  private long handle;
  private final Model model;
  private final double[] lastEvalLoss = {Double.NaN};

  private TrainingSession(long handle, Model model) {
    this.handle = handle;
    this.model = model;
  }

  /** Creates the run, or resumes the one in options.runDir. */
  public static TrainingSession open(Model model, Options o, Cancellation cancel) {
    long h = Native.sessionOpen(model.live(), Native.utf8(o.runDir), Native.utf8(o.dataPath), Native.utf8(o.evalDataPath),
        Native.utf8(o.task), Native.utf8(o.labels), Native.utf8(o.trainable), Native.utf8(o.preset), o.steps, o.batchSize,
        o.lr, o.eps, o.seed, o.maxLength, o.kShot, o.dataSeed, Cancellation.of(cancel));
    return new TrainingSession(h, model);
  }

  /**
   * Trains up to maxSteps more steps (0: to the end); returns the run's steps so far. A listener returning false or
   * a cancellation throws PocketLlmException(CANCELLED) after the current step; train again to go on.
   */
  public int train(int maxSteps, ProgressListener listener, Cancellation cancel) {
    return Native.sessionTrain(live(), maxSteps, listener, Cancellation.of(cancel), lastEvalLoss);
  }

  public int stepsDone() { return Native.sessionStepsDone(live()); }

  /** The last held-out loss (NaN when none yet). */
  public double lastEvalLoss() { return lastEvalLoss[0]; }

  public Model model() { return model; }

  private long live() {
    if (handle == 0) throw new IllegalStateException("the session is closed");
    return handle;
  }

  @Override public void close() {
    if (handle != 0) Native.sessionFree(handle);
    handle = 0;
  }
}
