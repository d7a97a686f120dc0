#!/usr/bin/env bash
# pocketllm classify on the real stories260K: its labels score SST-2 dev exactly as eval does, the
# probabilities are a distribution whose top is the label, one text alone gets what it got in a batch,
# stdin and files give the same, a run's own template and labels are used, and bad use is refused.
#   test_classify.sh POCKETLLM_BINARY SHARED_DIR
source "$(dirname "$0")/../support/test_lib.sh"
bin="$(realpath "$1")"; shared="$2"
model="$shared/hub/karpathy/tinyllamas/stories260K"
dev="$shared/data/sst2/glue_sst2_dev.tsv"
if [ ! -f "$model/stories260K.bin" ] || [ ! -f "$dev" ]; then
  echo "skip: $model or $dev not found (set POCKETLLM_SHARED)"; exit 0
fi
cd "$work"
head -201 "$dev" > dev.tsv  # the header and 200 sentences
# The texts as the TSV reader takes them (trailing spaces of the sentence column dropped).
tail -n +2 dev.tsv | cut -f1 | sed 's/ *$//' > texts.txt
M=(--model "$model")

"$bin" eval "${M[@]}" --data dev.tsv --preset sst2 > eval.txt
eval_acc=$(sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' eval.txt)
"$bin" classify "${M[@]}" --data dev.tsv --preset sst2 > out.tsv 2> err.txt
check "one line per sentence" '[ "$(wc -l < out.tsv)" = 200 ]'
acc=$(paste <(cut -f1 out.tsv) <(tail -n +2 dev.tsv | cut -f2) | awk '{ n++; ok += $1 == $2 } END { printf "%.2f", 100 * ok / n }')
check "the labels score dev as eval does ($acc % = $eval_acc %)" '[ -n "$eval_acc" ] && [ "$acc" = "$eval_acc" ]'
# eval's per-label lines, recomputed from classify's answers and dev's labels.
per_label=$(paste <(cut -f1 out.tsv) <(tail -n +2 dev.tsv | cut -f2) | awk -v w0=bad -v w1=good '
  { n[$2]++; right[$2] += $1 == $2; predicted[$1]++ }
  END { for (l = 0; l <= 1; l++) printf "label %d \"%s\": %d examples, %.2f%% right; predicted %d times\n", l, l ? w1 : w0, n[l], 100 * right[l] / n[l], predicted[l] }')
check "eval's per-label lines agree with classify's answers" '[ "$(grep "^label" eval.txt | sed "s/ (.*//")" = "$per_label" ]'
check "each line is LABEL, the probability of the top label (>= 0.5 of two), the text" \
  'awk -F"\t" "\$1 !~ /^[01]$/ || \$2 < 0.5 || \$2 > 1 { bad++ } END { exit bad > 0 }" out.tsv &&
   [ "$(cut -f3 out.tsv)" = "$(cat texts.txt)" ]'

"$bin" classify "${M[@]}" --data dev.tsv --preset sst2 --json > out.jsonl
check "--json: the probabilities sum to 1, the label is the most probable one, its word is the preset's" \
  'python3 - out.jsonl << "EOF"
import json, sys
words = {"0": "bad", "1": "good"}
for line in open(sys.argv[1]):
    d = json.loads(line)
    p = d["probabilities"]
    assert abs(sum(p.values()) - 1) < 1e-9, d
    assert d["label"] == max(p, key=p.get) and d["word"] == words[d["label"]], d
EOF'
check "and the same labels as the plain output" '[ "$(python3 -c "import json,sys; [print(json.loads(l)[\"label\"]) for l in open(\"out.jsonl\")]")" = "$(cut -f1 out.tsv)" ]'

text=$(sed -n 7p texts.txt)
alone=$("$bin" classify "${M[@]}" --preset sst2 --text "$text")
check "one text alone gets what it got in the batch" '[ "$alone" = "$(sed -n 7p out.tsv)" ]'
check "stdin, one text per line, gives the file's answers" \
  '[ "$("$bin" classify "${M[@]}" --preset sst2 --data - < texts.txt)" = "$(cat out.tsv)" ]'
check "other label words: the answers follow them" \
  '"$bin" classify "${M[@]}" --template "{text} I felt" --labels "neg:sad,pos:happy" --text "$text" | grep -qE "^(neg|pos)	0\.[5-9]"'

# A run that trained a classifier: classify --run takes its template and label words.
tail -n +2 dev.tsv | head -40 > train.tsv
"$bin" finetune "${M[@]}" --data train.tsv --template "{text} I felt" --labels "0:sad,1:happy" --task classify \
  --steps 3 --batch-size 8 --out run > /dev/null 2>&1
check "--run uses the run's template and labels: the same as the base model with them and the run's weights" \
  '[ "$("$bin" classify --run run --text "$text")" = "$("$bin" classify --run run --template "{text} I felt" --labels "0:sad,1:happy" --text "$text")" ] &&
   [ "$("$bin" classify --run run --text "$text")" != "$("$bin" classify "${M[@]}" --template "{text} I felt" --labels "0:sad,1:happy" --text "$text")" ]'
"$bin" finetune "${M[@]}" --data train.tsv --task lm --steps 1 --batch-size 4 --out lmrun > /dev/null 2>&1
check "a language-model run without labels is refused, saying what is missing" \
  '! "$bin" classify --run lmrun --text x 2> e.txt && grep -q "needs label words" e.txt'

check "neither or both of --text and --data: a usage error" \
  '"$bin" classify "${M[@]}" --preset sst2 > /dev/null 2>&1; [ $? = 2 ] && { "$bin" classify "${M[@]}" --preset sst2 --text a --data b > /dev/null 2>&1; [ $? = 2 ]; }'
check "no texts on stdin: refused" '! "$bin" classify "${M[@]}" --preset sst2 --data - < /dev/null 2> e.txt && grep -q "no texts" e.txt'
check "a missing file: refused with its name" '! "$bin" classify "${M[@]}" --preset sst2 --data none.tsv 2> e.txt && grep -q "none.tsv" e.txt'
check "an unknown preset: a usage error" '"$bin" classify "${M[@]}" --preset imdb --text a > /dev/null 2>&1; [ $? = 2 ]'
finish
