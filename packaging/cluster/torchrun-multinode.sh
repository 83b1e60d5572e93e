#!/usr/bin/env bash
# Train one run on several machines with torchrun: start this script on every node, with the same
# arguments and environment, each with its own NODE_RANK.
#
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0.example.org bash torchrun-multinode.sh run.toml --dataset /shared/data
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=node0.example.org bash torchrun-multinode.sh run.toml --dataset /shared/data
#
# run.toml is what the window's "Save config..." writes (or `pretrain-workbench examples tiny-sample`).
# One process per GPU (GPUS_PER_NODE, default: every GPU torch sees; 1 on a CPU-only node, gloo).
# Rendezvous: static, on MASTER_ADDR:MASTER_PORT (node 0 listens; the port must be reachable).
# The dataset and train.output_dir must be on storage every node sees at the same path: global rank 0
# writes the checkpoints, every rank reads the dataset. Global rank 0 records the run: pass
# --db postgresql://... for a history shared by the team (see the README's "Run history"), or leave the
# default (node 0's own SQLite database; the other nodes record nothing, so there is nothing to merge).
# Further arguments go to `pretrain-workbench train` (--set KEY=VALUE, --dataset, --db, --resume RUN...).
set -euo pipefail
NODE_RANK=${NODE_RANK:-${SLURM_NODEID:-}}                   # under Slurm, the node's index in the job
: "${NNODES:?set NNODES, the number of machines}" "${NODE_RANK:?set NODE_RANK (0 .. NNODES-1)}"
: "${MASTER_ADDR:?set MASTER_ADDR, the address of node 0}"
MASTER_PORT=${MASTER_PORT:-29500}
PYTHON=${PYTHON:-python}
if [ -z "${GPUS_PER_NODE:-}" ]; then
    GPUS_PER_NODE=$("$PYTHON" -c "import torch; print(max(1, torch.cuda.device_count()))")
fi
exec "$PYTHON" -m torch.distributed.run \
    --nnodes "$NNODES" --node-rank "$NODE_RANK" --nproc-per-node "$GPUS_PER_NODE" \
    --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" \
    -m workbench train "$@"
