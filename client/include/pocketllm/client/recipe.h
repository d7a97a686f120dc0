// Default recipes: the training settings a run gets for what the user leaves out, by task and preset
// (docs/training.md, "Default recipes", says how each was chosen and what it measured).
#pragma once

#include <string>

#include "pocketllm/client/trainer.h"

namespace pocketllm {

// Adam over a full set of directions (docs/training.md) in place of the SGD estimate, for trainable sets of
// at most max_params elements: a step costs about 2.5 (d + 1) x batch_size forward passes.
struct RecipeAdam {
  int max_params = 0;  // 0: never
  int batch_size = 0;
  double lr = 0;
  double decay_to_start = 0;  // TrainOptions::decay_to_start for the run (0: off)
};

struct Recipe {
  std::string trainable = "*";        // patterns or a shorthand (expand_trainable)
  int batch_size = 16;
  double lr = 1e-4;                   // used when lr_times_params is 0
  double lr_times_params = 0;         // > 0: lr = lr_times_params / trainable parameters, fixed at the run's start
  LrSchedule schedule = LrSchedule::kConstant;
  bool balanced = false;              // classify: batches take the labels in turn
  int validation = 0, patience = 0;   // examples per label held out (0: none), validations without progress
  int min_words = 0;                  // training examples of fewer words are dropped (0: none)
  // Used when the caller leaves the optimizer, batch, lr and directions to the recipe (and sets no momentum
  // or clip): a small trainable set trains with Adam, a larger one with the SGD settings above.
  RecipeAdam adam;
};

// task: "lm" or "classify"; preset: "" or a classification_preset name. Unknown combinations get the
// task's general recipe.
Recipe default_recipe(const std::string& task, const std::string& preset);

}  // namespace pocketllm
