#include "pocketllm/client/recipe.h"

namespace pocketllm {

Recipe default_recipe(const std::string& task, const std::string& preset) {
  Recipe r;  // lm: every parameter, batches of 16, constant lr 1e-4
  if (task != "classify") return r;
  // Classification: the norm vectors, balanced batches of 256, cosine lr of 35.2 / d. ZO's stable step
  // falls as 1/d (the estimate's squared norm grows with d); 35.2 / d is 5e-2 for stories260K's 704 norm
  // parameters, the lr measured best there on SST-2 (8e-2 diverges at batch 128). The norms learn without
  // fitting a k-shot sample (all parameters fit it after ~1 200 steps), so no validation split is needed.
  r.trainable = "norms";
  r.batch_size = 256;
  r.lr_times_params = 35.2;
  r.schedule = LrSchedule::kCosine;
  r.balanced = true;
  // GLUE SST-2's training rows: a quarter are treebank phrases of three words or fewer, the dev set is
  // whole sentences. The preset draws its sample from sentences of six words or more.
  if (preset == "sst2") r.min_words = 6;
  return r;
}

}  // namespace pocketllm
