#!/usr/bin/env python3
"""Builds the tiny TorchScript models the C++ tests load (tests/core/test_torchscript_model.cpp,
tests/core/test_model_check.cpp) and PyTorch's own outputs on fixed inputs, as the oracle.

Usage: /usr/bin/python3 tests/python/make_torchscript_models.py OUT_DIR

Writes into OUT_DIR (every model seeded, so the files are the same on every run):

  tiny_bert.pt + .json   a BERT-like encoder in Hugging Face's layout (post-LayerNorm blocks,
                         word + position + token-type embeddings, pooler, classifier), traced
                         with torch.jit.trace in eval mode; forward(input_ids, attention_mask,
                         token_type_ids, position_ids, head_mask) returns
                         (logits, hidden_states tuple of layers + 1, attentions tuple of layers),
                         exactly what a transformers model gives when traced with
                         torchscript=True, output_hidden_states=True, output_attentions=True.
                         head_mask [layers, heads] multiplies the attention probabilities as
                         Hugging Face's BertSelfAttention does.
  vocab.txt              its WordPiece vocabulary
  bert_nohm.pt + .json   the same weights traced without head_mask (input_ids, attention_mask)
  bert_nohm_heads12.json a manifest for bert_nohm.pt that claims 12 heads (it has 4)
  tiny_bert_classes4.json a manifest for tiny_bert.pt with 4 class names (it has 3 classes)
  tiny_bert_heads12.json a manifest for tiny_bert.pt that claims 12 heads: head_mask [2, 12]
                         makes its forward fail
  bert_head_avg.pt + .json  returns head-averaged attentions [B, L, L] (wrong shape)
  bert_logits_only.pt + .json  returns (logits,) while its manifest says hidden states at [1]
                         and attentions at [2]
  dict_logits.pt + .json a scripted module returning {"logits": ...} whose manifest says
                         hidden states under "hidden_states"
  polarity_bag.pt + .json  the same over 2 classes (negative, positive), for `--task polarity`
  raises.pt + .json      a scripted module whose forward raises RuntimeError
  ignores_head_mask.pt + .json  takes head_mask and ignores it
  bert_doubled_attn.pt + .json  returns attentions times 2 (rows sum to 2: not probabilities)
  mlp.pt + .json         a scripted MLP over 6 features (hidden 12, 8; dropout 0.1) returning
                         (logits, [input, h1, h2])
  mlp_synth.pt + .json   the same shape over 32 features and 12 classes (task synthetic_hierarchy)
  state_dict.pt + .json  torch.save of a state_dict: not TorchScript
  not_a_model.pt + .json a text file
  reference.json         inputs and PyTorch's outputs: logits, hidden states and attentions of
                         tiny_bert with all heads on and with head (1, 2) masked, the
                         gradient of the cross-entropy by head_mask, the MLP's
                         logits and hidden states, one SGD step of each (loss before and after,
                         the classifier weight after)
"""

import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYERS = 2
HEADS = 4
WIDTH = 16
FFN = 32
MAX_LEN = 32
CLASSES = 3
CLASS_NAMES = ["negative", "neutral", "positive"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "on", "mat",
         "##s", "un", "##aff", "##able", ",", ".", "!", "very", "good", "bad", "movie", "is", "was",
         "not", "i", "it", "and", "##ly"]
SGD_LR = 0.1


# ----- models ---------------------------------------------------------------------------

class SelfAttention(nn.Module):
    """Hugging Face's BertSelfAttention + BertSelfOutput, in small."""

    def __init__(self):
        super().__init__()
        self.query = nn.Linear(WIDTH, WIDTH)
        self.key = nn.Linear(WIDTH, WIDTH)
        self.value = nn.Linear(WIDTH, WIDTH)
        self.dense = nn.Linear(WIDTH, WIDTH)
        self.norm = nn.LayerNorm(WIDTH, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def split(self, x):
        b, n, _ = x.shape
        return x.view(b, n, HEADS, WIDTH // HEADS).permute(0, 2, 1, 3)

    def forward(self, x, extended_mask, layer_head_mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(WIDTH // HEADS) + extended_mask
        probs = self.dropout(torch.softmax(scores, dim=-1))
        if layer_head_mask is not None:
            probs = probs * layer_head_mask
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        context = context.view(context.shape[0], context.shape[1], WIDTH)
        return self.norm(self.dropout(self.dense(context)) + x), probs


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = SelfAttention()
        self.intermediate = nn.Linear(WIDTH, FFN)
        self.output = nn.Linear(FFN, WIDTH)
        self.norm = nn.LayerNorm(WIDTH, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x, extended_mask, layer_head_mask):
        a, probs = self.attention(x, extended_mask, layer_head_mask)
        return self.norm(self.dropout(self.output(F.gelu(self.intermediate(a)))) + a), probs


class TinyBert(nn.Module):
    """forward(input_ids, attention_mask, token_type_ids, position_ids, head_mask) as
    BertForSequenceClassification with torchscript=True (return_dict=False),
    output_hidden_states=True, output_attentions=True."""

    def __init__(self, classes=CLASSES, layers=LAYERS, vocab_size=len(VOCAB)):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, WIDTH)
        self.position_embeddings = nn.Embedding(MAX_LEN, WIDTH)
        self.token_type_embeddings = nn.Embedding(2, WIDTH)
        self.embedding_norm = nn.LayerNorm(WIDTH, eps=1e-12)
        self.dropout = nn.Dropout(0.1)
        self.layers = nn.ModuleList([Layer() for _ in range(layers)])
        self.pooler = nn.Linear(WIDTH, WIDTH)
        self.classifier = nn.Linear(WIDTH, classes)

    def forward(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask):
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids) + \
            self.token_type_embeddings(token_type_ids)
        x = self.dropout(self.embedding_norm(x))
        # Hugging Face's get_extended_attention_mask and get_head_mask.
        extended = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        head_mask = head_mask.unsqueeze(1).unsqueeze(-1).unsqueeze(-1).to(x.dtype)  # [L, 1, H, 1, 1]
        hidden = (x,)
        attentions = ()
        for i, layer in enumerate(self.layers):
            x, probs = layer(x, extended, head_mask[i])
            hidden = hidden + (x,)
            attentions = attentions + (probs,)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        logits = self.classifier(self.dropout(pooled))
        return logits, hidden, attentions


class NoHeadMask(nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):
        positions = torch.arange(input_ids.shape[1]).unsqueeze(0).expand_as(input_ids)
        ones = torch.ones(LAYERS, HEADS)
        return self.bert(input_ids, attention_mask, torch.zeros_like(input_ids), positions, ones)


class HeadAveraged(nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask):
        logits, hidden, attentions = self.bert(input_ids, attention_mask, token_type_ids, position_ids, head_mask)
        return logits, hidden, tuple(a.mean(dim=1) for a in attentions)


class LogitsOnly(nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):
        positions = torch.arange(input_ids.shape[1]).unsqueeze(0).expand_as(input_ids)
        logits, _, _ = self.bert(input_ids, attention_mask, torch.zeros_like(input_ids), positions,
                                 torch.ones(LAYERS, HEADS))
        return (logits,)


class IgnoresHeadMask(nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask):
        return self.bert(input_ids, attention_mask, token_type_ids, position_ids, torch.ones(LAYERS, HEADS))


class DoubledAttentions(nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask):
        logits, hidden, attentions = self.bert(input_ids, attention_mask, token_type_ids, position_ids, head_mask)
        return logits, hidden, tuple(a * 2.0 for a in attentions)


class DictLogits(nn.Module):
    def __init__(self, classes=CLASSES):
        super().__init__()
        self.embedding = nn.Embedding(len(VOCAB), 8)
        self.classifier = nn.Linear(8, classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        m = attention_mask.to(torch.float32).unsqueeze(-1)
        pooled = (self.embedding(input_ids) * m).sum(1) / m.sum(1)
        return {"logits": self.classifier(pooled)}


class Raises(nn.Module):
    def __init__(self):
        super().__init__()
        self.classifier = nn.Linear(4, CLASSES)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        if input_ids.shape[0] > 0:
            raise RuntimeError("this model refuses every batch")
        return self.classifier(torch.zeros(1, 4))


class Mlp(nn.Module):
    def __init__(self, features=6, classes=CLASSES):
        super().__init__()
        self.fc1 = nn.Linear(features, 12)
        self.fc2 = nn.Linear(12, 8)
        self.out = nn.Linear(8, classes)
        self.dropout = nn.Dropout(0.1)

    def forward(self, features: torch.Tensor):
        h1 = self.dropout(torch.relu(self.fc1(features)))
        h2 = self.dropout(torch.relu(self.fc2(h1)))
        return self.out(h2), [features, h1, h2]


# ----- files ----------------------------------------------------------------------------

def flat(t):
    t = t.detach().to(torch.float64).contiguous()
    return {"shape": list(t.shape), "data": t.flatten().tolist()}


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


def bert_manifest(inputs, outputs=None, heads=HEADS, classes=None, prefix=""):
    """A manifest for the tiny BERT; `prefix` is where a wrapper holds it ("bert.")."""
    return {
        "manifest_version": 1,
        "inputs": inputs,
        "outputs": outputs if outputs is not None else {"logits": 0, "hidden_states": 1, "attentions": 2},
        "tokenizer": {"type": "wordpiece", "vocab": "vocab.txt", "lower_case": True},
        "class_names": classes or CLASS_NAMES,
        "sizes": {"layers": LAYERS, "heads": heads, "width": WIDTH, "max_length": MAX_LEN},
        "classifier": {"weight": prefix + "classifier.weight", "bias": prefix + "classifier.bias"},
    }


def bert_inputs():
    """Two rows of length 16: a sentence pair (token types 0 then 1) and a padded row."""
    ids = torch.tensor([[2, 5, 7, 9, 10, 5, 11, 17, 3, 6, 8, 12, 24, 20, 17, 3],
                        [2, 26, 24, 25, 19, 21, 13, 14, 15, 3, 0, 0, 0, 0, 0, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    types = torch.tensor([[0] * 9 + [1] * 7, [0] * 16], dtype=torch.int64)
    positions = torch.arange(16).unsqueeze(0).expand(2, 16).contiguous()
    return ids, mask, types, positions


def sgd_step(module, forward, labels):
    """One SGD step on a copy-free module; returns (loss before, loss after)."""
    opt = torch.optim.SGD(module.parameters(), lr=SGD_LR)
    opt.zero_grad()
    loss = F.cross_entropy(forward(), labels)
    loss.backward()
    opt.step()
    with torch.no_grad():
        after = F.cross_entropy(forward(), labels)
    return loss.item(), after.item()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")

    bert = TinyBert().eval()
    ids, mask, types, positions = bert_inputs()
    ones = torch.ones(LAYERS, HEADS)
    # Traced with another batch size and length than the tests use: the trace must not fix them.
    ex_ids = torch.randint(5, len(VOCAB), (3, 8))
    ex_mask = torch.ones(3, 8, dtype=torch.int64)
    ex_types = torch.zeros(3, 8, dtype=torch.int64)
    ex_pos = torch.arange(8).unsqueeze(0).expand(3, 8).contiguous()
    with torch.no_grad():
        traced = torch.jit.trace(bert, (ex_ids, ex_mask, ex_types, ex_pos, ones))
    traced.save(os.path.join(out, "tiny_bert.pt"))
    full = ["input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask"]
    write_json(os.path.join(out, "tiny_bert.json"), bert_manifest(full))
    write_json(os.path.join(out, "tiny_bert_classes4.json"),
               bert_manifest(full, classes=CLASS_NAMES + ["other"]))
    write_json(os.path.join(out, "tiny_bert_heads12.json"), bert_manifest(full, heads=12))

    with torch.no_grad():
        nohm = torch.jit.trace(NoHeadMask(bert).eval(), (ex_ids, ex_mask))
        nohm.save(os.path.join(out, "bert_nohm.pt"))
        two = ["input_ids", "attention_mask"]
        write_json(os.path.join(out, "bert_nohm.json"), bert_manifest(two, prefix="bert."))
        write_json(os.path.join(out, "bert_nohm_heads12.json"), bert_manifest(two, heads=12, prefix="bert."))
        avg = torch.jit.trace(HeadAveraged(bert).eval(), (ex_ids, ex_mask, ex_types, ex_pos, ones))
        avg.save(os.path.join(out, "bert_head_avg.pt"))
        write_json(os.path.join(out, "bert_head_avg.json"), bert_manifest(full, prefix="bert."))
        ignores = torch.jit.trace(IgnoresHeadMask(bert).eval(), (ex_ids, ex_mask, ex_types, ex_pos, ones))
        ignores.save(os.path.join(out, "ignores_head_mask.pt"))
        write_json(os.path.join(out, "ignores_head_mask.json"), bert_manifest(full, prefix="bert."))
        doubled = torch.jit.trace(DoubledAttentions(bert).eval(), (ex_ids, ex_mask, ex_types, ex_pos, ones))
        doubled.save(os.path.join(out, "bert_doubled_attn.pt"))
        write_json(os.path.join(out, "bert_doubled_attn.json"), bert_manifest(full, prefix="bert."))
        only = torch.jit.trace(LogitsOnly(bert).eval(), (ex_ids, ex_mask))
        only.save(os.path.join(out, "bert_logits_only.pt"))
        write_json(os.path.join(out, "bert_logits_only.json"), bert_manifest(two, prefix="bert."))
    torch.jit.script(DictLogits().eval()).save(os.path.join(out, "dict_logits.pt"))
    write_json(os.path.join(out, "dict_logits.json"),
               bert_manifest(two, outputs={"logits": "logits", "hidden_states": "hidden_states"}))
    # For `--task polarity` (2 classes), a bag of embeddings with no hidden states.
    torch.jit.script(DictLogits(classes=2).eval()).save(os.path.join(out, "polarity_bag.pt"))
    write_json(os.path.join(out, "polarity_bag.json"),
               bert_manifest(two, outputs={"logits": "logits"}, classes=["negative", "positive"]))
    torch.jit.script(Raises().eval()).save(os.path.join(out, "raises.pt"))
    write_json(os.path.join(out, "raises.json"), bert_manifest(two, outputs={"logits": []}))

    mlp = Mlp().eval()
    torch.jit.script(mlp).save(os.path.join(out, "mlp.pt"))
    mlp_manifest = {"inputs": ["features"], "outputs": {"logits": 0, "hidden_states": 1},
                    "class_names": CLASS_NAMES, "sizes": {"layers": 2, "width": 12, "features": 6},
                    "classifier": {"weight": "out.weight", "bias": "out.bias"}}
    write_json(os.path.join(out, "mlp.json"), mlp_manifest)

    # For `--task synthetic_hierarchy` (its defaults: 32 features, 4 x 3 classes named s<k>c<j>).
    torch.jit.script(Mlp(features=32, classes=12).eval()).save(os.path.join(out, "mlp_synth.pt"))
    write_json(os.path.join(out, "mlp_synth.json"),
               {"inputs": ["features"], "outputs": {"logits": 0, "hidden_states": 1},
                "class_names": ["s%dc%d" % (k // 3, k % 3) for k in range(12)],
                "sizes": {"layers": 2, "width": 32, "features": 32}})

    torch.save(bert.state_dict(), os.path.join(out, "state_dict.pt"))
    write_json(os.path.join(out, "state_dict.json"), bert_manifest(full))
    with open(os.path.join(out, "not_a_model.pt"), "w", encoding="utf-8") as f:
        f.write("this is not a TorchScript file\n")
    write_json(os.path.join(out, "not_a_model.json"), bert_manifest(full))

    # ----- PyTorch's own outputs, the oracle of the C++ tests ----------------------------
    ref = {"sgd_lr": SGD_LR}
    with torch.no_grad():
        logits, hidden, attentions = bert(ids, mask, types, positions, ones)
        ref["bert"] = {"input_ids": flat(ids), "attention_mask": flat(mask), "token_type_ids": flat(types),
                       "logits": flat(logits), "hidden_states": [flat(h) for h in hidden],
                       "attentions": [flat(a) for a in attentions]}
        gated = ones.clone()
        gated[1, 2] = 0.0
        logits_g, _, attentions_g = bert(ids, mask, types, positions, gated)
        ref["bert"]["masked_head"] = [1, 2]
        ref["bert"]["masked_logits"] = flat(logits_g)
        ref["bert"]["masked_attentions"] = [flat(a) for a in attentions_g]
        # What the no-head-mask wrapper sees: token types all 0.
        ref["bert"]["nohm_logits"] = flat(bert(ids, mask, torch.zeros_like(ids), positions, ones)[0])
        features = torch.randn(4, 6)
        mlp_logits, mlp_hidden = mlp(features)
        ref["mlp"] = {"features": flat(features), "logits": flat(mlp_logits),
                      "hidden_states": [flat(h) for h in mlp_hidden]}

    # The gradient of the mean cross-entropy by the head mask (Michel et al.'s importance is its
    # absolute value averaged over examples).
    gate = torch.ones(LAYERS, HEADS, requires_grad=True)
    loss = F.cross_entropy(bert(ids, mask, types, positions, gate)[0], torch.tensor([0, 2]))
    ref["bert"]["head_mask_grad"] = flat(torch.autograd.grad(loss, gate)[0])

    # One SGD step through every parameter (eval mode: no dropout), on copies of the modules.
    labels = torch.tensor([0, 2], dtype=torch.int64)
    bert_copy = torch.jit.load(os.path.join(out, "tiny_bert.pt"))
    before, after = sgd_step(bert_copy, lambda: bert_copy(ids, mask, types, positions, ones)[0], labels)
    ref["bert"]["train"] = {"labels": [0, 2], "loss_before": before, "loss_after": after,
                            "classifier_weight_after": flat(bert_copy.classifier.weight)}
    mlp_labels = torch.tensor([0, 1, 2, 1], dtype=torch.int64)
    mlp_copy = torch.jit.load(os.path.join(out, "mlp.pt"))
    mlp_copy.eval()
    before, after = sgd_step(mlp_copy, lambda: mlp_copy(features)[0], mlp_labels)
    ref["mlp"]["train"] = {"labels": [0, 1, 2, 1], "loss_before": before, "loss_after": after,
                           "classifier_weight_after": flat(mlp_copy.out.weight),
                           "fc1_weight_after": flat(mlp_copy.fc1.weight)}
    write_json(os.path.join(out, "reference.json"), ref)

    make_polarity_models(out)


# Words of the polarity corpus the C++ tests write (tests/core/test_support.h,
# writePolarityCorpus), so that the own-model jobs see real pieces, not only [UNK].
POLARITY_WORDS = ["great", "fine", "lovely", "superb", "awful", "dull", "poor", "boring", "film", "plot",
                  "acting"]


def make_polarity_models(out):
    """For the job tests of tests/core/test_own_models.cpp (task polarity, 2 classes):
      polarity_bert.pt + .json        the BERT-like encoder (2 layers), HF inputs and outputs
      polarity_bert_small.pt + .json  the same with 1 layer (a student)
      polarity_vocab.txt              their WordPiece vocabulary (VOCAB + the corpus's words)
    Seeded apart from the models above, which stay as they were."""
    torch.manual_seed(7)
    vocab = VOCAB + POLARITY_WORDS
    with open(os.path.join(out, "polarity_vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    ex_ids = torch.randint(5, len(vocab), (3, 8))
    ex_mask = torch.ones(3, 8, dtype=torch.int64)
    ex_types = torch.zeros(3, 8, dtype=torch.int64)
    ex_pos = torch.arange(8).unsqueeze(0).expand(3, 8).contiguous()
    full = ["input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask"]
    for name, layers in (("polarity_bert", 2), ("polarity_bert_small", 1)):
        model = TinyBert(classes=2, layers=layers, vocab_size=len(vocab)).eval()
        with torch.no_grad():
            traced = torch.jit.trace(model, (ex_ids, ex_mask, ex_types, ex_pos, torch.ones(layers, HEADS)))
        traced.save(os.path.join(out, name + ".pt"))
        manifest = bert_manifest(full, classes=["negative", "positive"])
        manifest["tokenizer"]["vocab"] = "polarity_vocab.txt"
        manifest["sizes"]["layers"] = layers
        write_json(os.path.join(out, name + ".json"), manifest)


if __name__ == "__main__":
    main()
