// Trainable rows (docs/training.md, "Trainable rows"): train only some rows of a tensor — for an
// embedding or output head, the rows of the tokens a training sample uses. Rows outside the set are never
// perturbed or updated, so z of the trained rows is the perturbation spec's, unchanged.
#pragma once

#include <string>
#include <vector>

#include "pocketllm/common/status.h"

namespace pocketllm {

class LanguageModel;
class Task;

// Resolves a --trainable-rows spec against a model and its training sample into explicit row lists.
// spec: items separated by ';', each PATTERN=ROWS, PATTERN one name pattern or shorthand selecting
// trainable tensors, ROWS one of
//   sample       the rows of every token id the sample's examples feed the model (and, for classification,
//                the label words it reads out) — for tensors whose rows are token ids (embeddings, heads);
//   sample:MIN   the same, keeping token ids that occur at least MIN times (label words always kept);
//   LIST         row indices and ranges, "0-99,311" (rows counted from 0, ranges inclusive).
// Returns the spec with every ROWS as an explicit LIST (what spec.json records), or "" for "".
Result<std::string> resolve_trainable_rows(const LanguageModel& model, const std::string& spec, const Task* task,
                                           const std::vector<size_t>& sample);

// True when the spec still names a sample (needs resolve_trainable_rows with the data).
bool trainable_rows_need_sample(const std::string& spec);

// Applies a resolved spec: each selected tensor's Weight::row_mask flags its listed rows. A LIST out of
// range, a malformed item, an item that selects no trainable tensor or leaves a tensor no row is an error.
Status apply_trainable_rows(LanguageModel& model, const std::string& resolved);

}  // namespace pocketllm
