#!/usr/bin/env bash
# Regenerate the studies: train each config into experiments/mlflow.db, then write its report
# next to it (report-<dataset>/). STUDY=<name> regenerates one study. Exit 1 from `bnplace run`
# (some trials failed) still gets a report: failures are part of the answer.
set -euo pipefail
cd "$(dirname "$0")"
bnplace=${BNPLACE:-../.venv/bin/bnplace}
store="sqlite:///$PWD/mlflow.db"
for config in ${STUDY:-*}/*.yaml; do
  study=$(dirname "$config")
  dataset=$(basename "$config" .yaml)
  echo "== $study on $dataset"
  "$bnplace" run "$config" --tracking-uri "$store" --no-compare --jobs "${JOBS:-2}" \
    > "$study/run-$dataset.log" || [ $? -eq 1 ]
  experiment=$(sed -n 's/^experiment: *//p' "$config")
  "$bnplace" compare "$experiment" --tracking-uri "$store" --out "$study/report-$dataset" \
    --format markdown > /dev/null
done
