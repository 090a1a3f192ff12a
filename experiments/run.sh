#!/usr/bin/env bash
# Regenerate the studies: train each study's config (<study>/study.yaml) into
# experiments/mlflow.db, then write its report next to it (<study>/report/). STUDY=<name>
# regenerates one study. Exit 1 from `bnplace run` (some trials failed) still gets a report:
# failures are part of the answer. Ends with the check that every result the READMEs quote
# matches these reports (answers.py check), and prints the time it took.
set -euo pipefail
cd "$(dirname "$0")"
bnplace=${BNPLACE:-../.venv/bin/bnplace}
python=${PYTHON:-../.venv/bin/python}
store="sqlite:///$PWD/mlflow.db"
start=$(date +%s)
for config in ${STUDY:-*}/study.yaml; do
  study=$(dirname "$config")
  echo "== $study $(date +%T)"
  "$bnplace" run "$config" --tracking-uri "$store" --no-compare --jobs "${JOBS:-2}" \
    > "$study/run-study.log" || [ $? -eq 1 ]
  experiment=$(sed -n 's/^experiment: *//p' "$config")
  "$bnplace" compare "$experiment" --tracking-uri "$store" --out "$study/report" \
    --format markdown > /dev/null
done
echo "trained and compared in $(( ($(date +%s) - start) / 60 )) min"
"$python" answers.py check
