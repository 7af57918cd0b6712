#!/usr/bin/env python3
"""PyTorch's side of the own-model job tests (tests/core/test_own_models.cpp): runs the
TorchScript modules of tests/python/make_torchscript_models.py from Python on token ids the
test gives, builds every input as a user would by hand (attention mask = ids != [PAD] (0),
token types 0, positions 0..L-1, head_mask all ones), and writes what PyTorch computes.

Usage (/usr/bin/python3, which has torch):
  torchscript_oracle.py logits MODEL.pt MANIFEST.json IN.json OUT.json
      IN: {"ids": [[...], ...]}                    OUT: {"logits": [[...], ...]}
  torchscript_oracle.py kd_step STUDENT.pt STUDENT.json TEACHER.pt TEACHER.json IN.json OUT.json
      IN: {"student_ids", "teacher_ids", "labels", "lambda", "temperature", "lr", "weight_decay"}
      One AdamW step (torch.optim.AdamW, default betas and eps) on the whole batch of the loss
      (1 - lambda) CE + lambda T^2 mean_i KL(softmax(t_i / T) || softmax(s_i / T)), as
      docs/methods.md defines KDScope's; OUT: {"loss", "parameters": {name: {"before", "after",
      "grad"}}} (flattened lists).
"""

import json
import sys

import torch
import torch.nn.functional as F


def inputs(manifest, ids):
    names = [i if isinstance(i, str) else i["name"] for i in manifest["inputs"]]
    b, n = ids.shape
    values = {
        "input_ids": ids,
        "attention_mask": (ids != 0).to(torch.int64),
        "token_type_ids": torch.zeros_like(ids),
        "position_ids": torch.arange(n).unsqueeze(0).expand(b, n).contiguous(),
        "head_mask": torch.ones(manifest["sizes"]["layers"], manifest["sizes"].get("heads", 0)),
    }
    return [values[name] for name in names]


def logits_of(module, manifest, ids):
    out = module(*inputs(manifest, ids))
    path = manifest["outputs"]["logits"]
    for step in (path if isinstance(path, list) else [path]):
        out = out[step]
    return out


def load(path, manifest_path):
    module = torch.jit.load(path)
    module.eval()
    with open(manifest_path, encoding="utf-8") as f:
        return module, json.load(f)


def main():
    command = sys.argv[1]
    if command == "logits":
        module, manifest = load(sys.argv[2], sys.argv[3])
        with open(sys.argv[4], encoding="utf-8") as f:
            ids = torch.tensor(json.load(f)["ids"], dtype=torch.int64)
        with torch.no_grad():
            result = {"logits": logits_of(module, manifest, ids).to(torch.float64).tolist()}
        out = sys.argv[5]
    elif command == "kd_step":
        student, s_manifest = load(sys.argv[2], sys.argv[3])
        teacher, t_manifest = load(sys.argv[4], sys.argv[5])
        with open(sys.argv[6], encoding="utf-8") as f:
            spec = json.load(f)
        s_ids = torch.tensor(spec["student_ids"], dtype=torch.int64)
        t_ids = torch.tensor(spec["teacher_ids"], dtype=torch.int64)
        labels = torch.tensor(spec["labels"], dtype=torch.int64)
        lam, temp = spec["lambda"], spec["temperature"]
        with torch.no_grad():
            p = torch.softmax(logits_of(teacher, t_manifest, t_ids) / temp, dim=1)
        named = dict(student.named_parameters())
        before = {k: v.detach().clone() for k, v in named.items()}
        opt = torch.optim.AdamW(student.parameters(), lr=spec["lr"], weight_decay=spec["weight_decay"])
        opt.zero_grad()
        s = logits_of(student, s_manifest, s_ids)
        ce = F.cross_entropy(s, labels)
        logq = torch.log_softmax(s / temp, dim=1)
        kd = temp * temp * (torch.xlogy(p, p) - p * logq).sum(dim=1).mean()
        loss = (1 - lam) * ce + lam * kd
        loss.backward()
        grads = {k: v.grad.detach().clone() for k, v in named.items()}
        opt.step()
        result = {"loss": loss.item(), "parameters": {
            k: {"before": before[k].flatten().tolist(), "after": named[k].detach().flatten().tolist(),
                "grad": grads[k].flatten().tolist()} for k in named}}
        out = sys.argv[7]
    else:
        raise SystemExit("unknown command " + command)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
