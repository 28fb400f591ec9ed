"""The PyTorch peer of transformer-bench: the same GPT and ViT as dlion's Training module
(pre-LN blocks, fused QKV, tanh GELU, 4x MLP, final LayerNorm; GPT: learned positions and an
untied head with bias; ViT: patches projected by a linear map, learned positions, mean
pooling, linear head), float32 on the CPU, one AdamW step per batch. Prints one JSON line with
the median throughput of the timed steps.

    python peer.py --model gpt --threads 2
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, channels, heads, causal):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.ln1, self.ln2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.qkv, self.attproj = nn.Linear(channels, 3 * channels), nn.Linear(channels, channels)
        self.fc, self.fcproj = nn.Linear(channels, 4 * channels), nn.Linear(4 * channels, channels)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        x = x + self.attproj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocabulary, context, layers, channels, heads):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocabulary, channels), nn.Embedding(context, channels)
        self.blocks = nn.ModuleList(Block(channels, heads, True) for _ in range(layers))
        self.lnf, self.head = nn.LayerNorm(channels), nn.Linear(channels, vocabulary)

    def forward(self, tokens, targets):
        x = self.wte(tokens) + self.wpe.weight[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.lnf(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


class ViT(nn.Module):
    def __init__(self, patch, layers, channels, heads, side=28, classes=10):
        super().__init__()
        self.patch, self.positions = patch, (side // patch) ** 2
        self.embed = nn.Linear(patch * patch, channels)
        self.wpe = nn.Parameter(torch.zeros(self.positions, channels))
        self.blocks = nn.ModuleList(Block(channels, heads, False) for _ in range(layers))
        self.lnf, self.head = nn.LayerNorm(channels), nn.Linear(channels, classes)

    def forward(self, images, labels):
        B, P = images.shape[0], self.patch
        patches = images.unfold(1, P, P).unfold(2, P, P).reshape(B, self.positions, P * P)
        x = self.embed(patches) + self.wpe
        for block in self.blocks:
            x = block(x)
        return F.cross_entropy(self.head(self.lnf(x).mean(dim=1)), labels)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gpt", choices=["gpt", "vit"])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--vocabulary", type=int, default=96)
    parser.add_argument("--patch-size", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    if args.model == "gpt":
        model = GPT(args.vocabulary, args.context, args.layers, args.channels, args.heads)
        inputs = (torch.randint(args.vocabulary, (args.batch_size, args.context)),
                  torch.randint(args.vocabulary, (args.batch_size, args.context)))
        examples, unit = args.batch_size * args.context, "tokens/s"
    else:
        model = ViT(args.patch_size, args.layers, args.channels, args.heads)
        inputs = (torch.randn(args.batch_size, 28, 28), torch.randint(10, (args.batch_size,)))
        examples, unit = args.batch_size, "images/s"
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    times = []
    for round in range(args.rounds + 3):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model(*inputs).backward()
        optimizer.step()
        if round >= 3:
            times.append(time.perf_counter() - start)
    print(json.dumps({"unit": unit, "threads": args.threads, "parameters": sum(p.numel() for p in model.parameters()),
                      "full step, adamw": examples / statistics.median(times)}))


if __name__ == "__main__":
    main()
