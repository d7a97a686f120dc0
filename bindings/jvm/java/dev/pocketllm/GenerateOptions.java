package dev.pocketllm;

/**
 * How {@link Model#generate(String, GenerateOptions, TokenListener, Cancellation)} continues a prompt; the defaults
 * are pllm_generate_default_params()'s (greedy, 64 tokens). For sampled text as a user would read it, e.g.
 * {@code new GenerateOptions().sample(0.8f, 0.9f).repetitionPenalty(1.2f)}.
 */
public final class GenerateOptions {
  /** New tokens at most (1..65536); fewer at the end of the text or where the model's context is full. */
  public int maxNewTokens = 64;
  /** The most likely token each time; false samples with temperature, topK and topP. */
  public boolean greedy = true;
  /** Sampling temperature (> 0). */
  public float temperature = 1.0f;
  /** Sample from the topK most likely tokens (0: all) within the nucleus of probability topP ((0, 1]; 1: all). */
  public int topK = 0;
  public float topP = 1.0f;
  /** Divides the logit of every token already in the text before each choice: 1 off, 1.1-1.3 curbs loops; (0, 100]. */
  public float repetitionPenalty = 1.0f;
  /** The sampling seed: the same seed, options and weights give the same text. */
  public long seed = 0;

  public GenerateOptions maxNewTokens(int n) {
    maxNewTokens = n;
    return this;
  }

  /** Sampled instead of greedy, at this temperature within the nucleus topP. */
  public GenerateOptions sample(float temperature, float topP) {
    this.greedy = false;
    this.temperature = temperature;
    this.topP = topP;
    return this;
  }

  public GenerateOptions topK(int k) {
    topK = k;
    return this;
  }

  public GenerateOptions repetitionPenalty(float penalty) {
    repetitionPenalty = penalty;
    return this;
  }

  public GenerateOptions seed(long s) {
    seed = s;
    return this;
  }
}
