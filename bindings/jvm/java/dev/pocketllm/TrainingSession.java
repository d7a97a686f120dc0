package dev.pocketllm;

/**
 * Fine-tuning of a {@link Model} in place, logged to a run directory so a killed app resumes to the same weights
 * (open a session on the same run directory with a freshly loaded model). Close it before the model.
 */
public final class TrainingSession implements AutoCloseable {
  /**
   * What to train on and how; fields left as they are take the library's defaults (pllm_session_params in
   * pocketllm.h says each in full). Null task, labels and trainable, batchSize 0 and lr 0 take the recipe of the
   * task and preset (docs/training.md, "Default recipes"), as {@code pocketllm finetune} with no tuning options.
   * preset "sst2" or "agnews" makes the task "classify" with the preset's template, label words and recipe; kShot
   * draws that many examples per label with dataSeed (0: all).
   */
  public static final class Options {
    /** Required: the run directory (created, or resumed when it holds a run) and the private training data. */
    public String runDir, dataPath;
    /** Optional held-out data, evaluated at the start and the end of the run. */
    public String evalDataPath;
    /** "lm" or "classify"; classify: labels ("0:terrible,1:great") and promptTemplate ("{text} It was"). */
    public String task, labels, promptTemplate;
    /** Tensor-name patterns or a shorthand (all, norms, none, ...): what is trained (beside adapters). */
    public String trainable;
    /** null, "sst2" or "agnews". */
    public String preset;
    /** null (the recipe's), "constant", "linear" or "cosine": the lr over the run. */
    public String schedule;
    public int steps = 100, batchSize = 0, maxLength = 256, kShot = 0;
    public float lr = 0, eps = 1e-3f;
    public long seed, dataSeed;
    /** classify: 1 batches take the labels in turn, 0 draw at random, -1 the recipe's. */
    public int balanced = -1;
    /** Training examples of fewer words are dropped before the k-shot draw; 0: none, -1: the recipe's. */
    public int minWords = -1;
    /**
     * Early stopping: validationExamples per label (lm: in all) held out of dataPath (0: none, -1: the recipe's),
     * validated every validateEvery steps (0: steps / 20); after patience validations without a better loss the
     * run ends (0: never early). The model ends with the weights of the best validated step.
     */
    public int validationExamples = -1, validateEvery = 0, patience = 0;
    /**
     * Low-rank adapters over the frozen base (docs/training.md section 4): loraRank 1..1024 on loraTargets (null:
     * "q_proj,v_proj"; "all-linear"), output scale loraAlpha / rank (0: alpha = rank), A seeded by loraInitSeed.
     * With adapters, trainable left null trains them alone. 0: none.
     */
    public int loraRank = 0;
    public float loraAlpha = 0;
    public String loraTargets;
    public long loraInitSeed;
    /**
     * 0: no limit. Otherwise a session whose memory estimate exceeds it is refused (MEMORY_BUDGET); within it, the
     * two forward passes of a step run at once when a second pass's activations fit too.
     */
    public long memoryBudgetBytes;
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
    if (o == null) throw new IllegalArgumentException("options are required");
    return new TrainingSession(Native.sessionOpen(model.live(), o, Cancellation.of(cancel)), model);
  }

  /**
   * Trains up to maxSteps more steps (0: to the end); returns the run's steps so far. A listener returning false or
   * a cancellation throws PocketLlmException(CANCELLED) after the current step; train again to go on.
   */
  public int train(int maxSteps, ProgressListener listener, Cancellation cancel) {
    return Native.sessionTrain(live(), maxSteps, listener, Cancellation.of(cancel), lastEvalLoss);
  }

  public int stepsDone() { return Native.sessionStepsDone(live()); }

  /** The run's step count (its spec's steps). */
  public int totalSteps() { return Native.sessionTotalSteps(live()); }

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
