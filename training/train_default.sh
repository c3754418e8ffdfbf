#!/usr/bin/env bash
# Train the default SING (assets/sing_default.pt) on a 2-core CPU, from the FluidR3 SoundFont to the shipped file.
#
#   bash training/train_default.sh            # every stage; rerun to resume after an interruption
#   RUN=runs/default THREADS=1 bash training/train_default.sh
#   RUN=/tmp/try AE_STEPS=20 LSTM_STEPS=20 E2E_STEPS=20 MEL_STEPS=20 ASSET=/tmp/try.pt bash training/train_default.sh
#
# Each stage writes RUN/<stage>/ (checkpoint.pt, metrics.jsonl, tb/) and is skipped once its stage_<name>.pt
# exists; an interrupted stage resumes from its checkpoint.pt. The recipe and its measurements are in
# assets/MODEL_CARD.md. One thread per job: on two shared cores more threads only slow a run down.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=${RUN:-runs/default}
PACK=${PACK:-data/gm_pack}
THREADS=${THREADS:-1}
SOUNDFONT=${SOUNDFONT:-/usr/share/sounds/sf2/FluidR3_GM.sf2}
AE_STEPS=${AE_STEPS:-5000}
LSTM_STEPS=${LSTM_STEPS:-2000}
E2E_STEPS=${E2E_STEPS:-5000}
MEL_STEPS=${MEL_STEPS:-3000}
MEL_WEIGHT=${MEL_WEIGHT:-10}
ASSET=${ASSET:-assets/sing_default.pt}  # where the shipped model is written
# --max-steps ends each stage (and sets its lr decay); --epochs only has to be large enough
COMMON=(--data "$PACK" --threads "$THREADS" --no-progress --eval-notes 48 --log-every 50 --epochs 1000)

# 1. the pack: 46 GM programs (all 11 NSynth families), MIDI 36-84, velocities 50 and 127 (4,508 notes, ~15 s)
[ -f "$PACK/examples.json" ] || python -m training.make_pack --soundfont "$SOUNDFONT" --out "$PACK" \
    --pitches 36-84 --velocities 50,127 --no-progress

stage() {  # stage DIR KIND START ARGS...: run (or resume) a KIND stage into $RUN/DIR unless done; START: "",
    #       "--from CKPT" (an earlier stage's checkpoint) or "--init CKPT" (an exported model, instruments frozen)
    local dir=$1 kind=$2 from=$3; shift 3
    local out="$RUN/$dir"
    [ -f "$out/stage_$kind.pt" ] && { echo "stage $dir: done"; return; }
    local start=()
    if [ -f "$out/checkpoint.pt" ]; then start=(--resume); elif [ -n "$from" ]; then start=("${from%% *}" "${from#* }"); fi
    python -m training.sing_train "${COMMON[@]}" --out "$out" --stage "$kind" "${start[@]}" "$@"
}

# 2. autoencoder: the decoder's harmonic bank alone (64 oscillators at the note's pitch + 32 bands of noise, no
#    frame atoms), spectral loss on 16-hop crops of the sounding part, audio x128
BANK=(--harmonics 64 --noise-bands 32 --no-atoms --bank-start-db -40)
stage ae ae "" --lstm-hidden 256 --decoder-channels 512 --gain 128 --crop-steps 16 --batch-size 32 \
    --lr 1e-3 --lr-final 2e-4 --max-steps "$AE_STEPS" --eval-every 1000 "${BANK[@]}"
# 3. LSTM to the frozen encoder's latents (MSE, truncated BPTT 32), whole notes
stage lstm lstm "--from $RUN/ae/stage_ae.pt" --batch-size 16 --lr 1e-3 --lr-final 3e-4 --max-steps "$LSTM_STEPS" \
    --eval-every 500
# 4. end to end: LSTM + decoder, the spectral loss plus 3 x its bins below 1 kHz at 2048 points, on 16-hop crops
stage e2e e2e "--from $RUN/lstm/stage_lstm.pt" --crop-steps 16 --batch-size 16 --lr 3e-4 --lr-final 5e-5 \
    --max-steps "$E2E_STEPS" --eval-every 1000 --low-band-weight 3

# 5. the mel fine-tune: from the end-to-end model as exported (level calibrated), the same loss plus MEL_WEIGHT x
#    the L1 of log mel-band energies, which asks each band for its energy wherever in it the partials sit (the
#    per-bin loss alone turned the upper partials down: 5-7 dB too weak at 4-8 kHz)
[ "$RUN/e2e/model.pt" -nt "$RUN/e2e/stage_e2e.pt" ] || python -m training.export "$RUN/e2e/stage_e2e.pt" -o "$RUN/e2e/model.pt" --calibrate "$PACK"
stage mel e2e "--init $RUN/e2e/model.pt" --crop-steps 16 --batch-size 16 --lr 3e-4 --lr-final 2e-5 \
    --max-steps "$MEL_STEPS" --eval-every 1000 --low-band-weight 3 --mel-weight "$MEL_WEIGHT"

# 6. ship: fp16 weights + JSON sidecar (the training gain folded back), then the model card's metrics
python -m training.export "$RUN/mel/stage_e2e.pt" -o "$ASSET" --calibrate "$PACK"
python -m training.evaluate "$ASSET" --data "$PACK" --max-notes 48 --visqol 64 --threads "$THREADS" \
    --out "$RUN/eval"
