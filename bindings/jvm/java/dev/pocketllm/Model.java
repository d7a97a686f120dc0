package dev.pocketllm;

/**
 * A model loaded once and used by generation, evaluation, a {@link TrainingSession} (which trains it in place)
 * and a {@link FederatedDevice}. Calls block: never make them on the UI thread. One thread at a time.
 */
public final class Model implements AutoCloseable {
  long handle;

  private Model(long handle) { this.handle = handle; }

  /** Loads a Hugging Face directory or a llama2.c checkpoint. threads 0: all cores; budget 0: none. */
  public static Model load(String path, int threads, long memoryBudgetBytes, Cancellation cancel) {
    return new Model(Native.modelLoad(Native.utf8(path), threads, memoryBudgetBytes, Cancellation.of(cancel)));
  }

  public static Model load(String path) { return load(path, 0, 0, null); }

  /**
   * What using the model at path for batches of batchSize sequences of maxLength tokens takes, from its configuration
   * and file sizes alone (nothing is mapped): decide before loading whether it fits the device.
   */
  public static MemoryEstimate estimateMemory(String path, int batchSize, int maxLength) {
    long[] e = Native.estimateMemory(Native.utf8(path), batchSize, maxLength);
    return new MemoryEstimate(e[0], e[1], e[2]);
  }

  /** The base model id (64 hex characters). */
  public String id() { return Native.string(Native.modelId(live())); }

  public long parameterCount() { return Native.modelParams(live()); }

  /** Whether a session or device has trained the weights since loading. */
  public boolean isTrained() { return Native.modelIsTrained(live()); }

  /**
   * What the model is, as a JSON object (pllm_model_info in pocketllm.h lists the fields: architecture, sizes,
   * context_length, dtypes, adapter, id, trained, ...); e.g. {@code new org.json.JSONObject(model.info())} on Android.
   */
  public String info() { return Native.string(Native.modelInfo(live())); }

  /** Positions of the model's context: a prompt's tokens and the generated ones together, at most. */
  public int contextLength() { return Native.modelContextLength(live()); }

  /** Tokens text takes as a prompt, as generate encodes it: with contextLength, what fits a prompt and its answer. */
  public int countTokens(String text) { return Native.countTokens(live(), Native.utf8(text)); }

  /**
   * Continues prompt with the current weights as options say; listener (may be null) hears the text as it is
   * generated. At most options.maxNewTokens tokens, fewer at the end of the text or where the model's context is
   * full (a prompt that fills the context alone: PocketLlmException OUT_OF_RANGE).
   */
  public String generate(String prompt, GenerateOptions options, TokenListener listener, Cancellation cancel) {
    return Native.string(Native.generate(live(), 0, Native.utf8(prompt), options, listener, Cancellation.of(cancel)));
  }

  /** Greedy (or sampled, temperature > 0 and greedy false) continuation of prompt with the current weights. */
  public String generate(String prompt, int maxNewTokens, boolean greedy, float temperature, long seed, Cancellation cancel) {
    return generate(prompt, maxNewTokens, greedy, temperature, 0, 1.0f, seed, cancel);
  }

  /**
   * Sampled continuation (greedy false) from the topK most likely tokens (0: all) within the nucleus of probability
   * topP (1: all; (0, 1]), at temperature (> 0), from seed.
   */
  public String generate(String prompt, int maxNewTokens, boolean greedy, float temperature, int topK, float topP, long seed,
                         Cancellation cancel) {
    return generate(prompt, options(maxNewTokens, greedy, temperature, topK, topP, seed), null, cancel);
  }

  public String generate(String prompt, int maxNewTokens) { return generate(prompt, maxNewTokens, true, 1.0f, 0, null); }

  static GenerateOptions options(int maxNewTokens, boolean greedy, float temperature, int topK, float topP, long seed) {
    GenerateOptions o = new GenerateOptions().maxNewTokens(maxNewTokens).topK(topK).seed(seed);
    o.greedy = greedy;
    o.temperature = temperature;
    o.topP = topP;
    return o;
  }

  /** {mean loss, accuracy (-1 for "lm")} of the current weights on a data file; task "lm" or "classify". */
  public double[] evaluate(String dataPath, String task, String labels, Cancellation cancel) {
    return evaluate(dataPath, task, labels, null, cancel);
  }

  /**
   * The same, telling listener (on this thread) the share of examples scored after each batch; a listener that
   * returns false stops it (PocketLlmException CANCELLED).
   */
  public double[] evaluate(String dataPath, String task, String labels, ProgressListener listener, Cancellation cancel) {
    return Native.evaluate(live(), 0, Native.utf8(dataPath), Native.utf8(task), Native.utf8(labels), listener,
        Cancellation.of(cancel));
  }

  /**
   * The label the current weights give text, as evaluate scores classification: preset ("sst2", "agnews") or labels
   * ("0:bad,1:good") are required; template (may be null: the preset's, else "{text} It was") holds {text}.
   */
  public Classification classify(String text, String preset, String template, String labels, Cancellation cancel) {
    int[] label = new int[1];
    float[] probabilities = Native.classify(live(), 0, Native.utf8(text), Native.utf8(preset), Native.utf8(template),
        Native.utf8(labels), label, Cancellation.of(cancel));
    return new Classification(label[0], probabilities);
  }

  /** The same with a preset's template and labels. */
  public Classification classify(String text, String preset) { return classify(text, preset, null, null, null); }

  long live() {
    if (handle == 0) throw new IllegalStateException("the model is closed");
    return handle;
  }

  @Override public void close() {
    if (handle != 0) Native.modelFree(handle);
    handle = 0;
  }
}
