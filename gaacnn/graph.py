"""Graph attention over latent positions (paper Sec. III-D), used in h_a and h_s at H/32.

Where this sits: y -> h_a [ ... down -> h -> attention(h) + GAT(h) ... ] -> z, and
z -> h_s [ ... up -> u -> attention(u) + GAT(u) ... ] -> entropy parameters.

Every spatial position is a node whose feature is its channel vector. As in the authors'
code, nodes i and j are joined when their feature vectors have a positive dot product
(a similarity graph, self-loops included), not a grid and not a k-NN graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import DenseGATConv


def similarity_adjacency(nodes: Tensor) -> Tensor:
    """Dense adjacency (B, N, N): 1 where <f_i, f_j> > 0, with self-loops."""
    with torch.no_grad():
        adj = (nodes @ nodes.transpose(1, 2) > 0).to(nodes.dtype)
        adj.diagonal(dim1=1, dim2=2).fill_(1.0)
    return adj


def feature_map_to_nodes(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H*W, C): one node per spatial position, raster order."""
    return x.flatten(2).transpose(1, 2)


class GraphAttentionBranch(nn.Module):
    """Two single-head GAT layers (C -> C) over the similarity graph, ELU in between.

    Returns a (B, C, H, W) map, added by the caller as a residual branch.
    """

    def __init__(self, ch: int, dropout: float = 0.6) -> None:
        super().__init__()
        self.gat1 = DenseGATConv(ch, ch, heads=1, negative_slope=0.2, dropout=dropout)
        self.gat2 = DenseGATConv(ch, ch, heads=1, negative_slope=0.2, dropout=dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        nodes = feature_map_to_nodes(x)
        adj = similarity_adjacency(nodes)
        out = F.elu(self.gat1(nodes, adj, add_loop=False))
        out = self.gat2(out, adj, add_loop=False)
        return out.transpose(1, 2).reshape(b, c, h, w)

    @torch.no_grad()
    def attention_weights(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """First layer's attention coefficients (B, N, N) and the adjacency, for visualisation."""
        nodes = feature_map_to_nodes(x)
        adj = similarity_adjacency(nodes)
        conv = self.gat1
        h = conv.lin(nodes).view(nodes.size(0), nodes.size(1), conv.heads, conv.out_channels)
        a_src = (h * conv.att_src).sum(-1)  # B, N, heads
        a_dst = (h * conv.att_dst).sum(-1)
        logits = F.leaky_relu(a_src.unsqueeze(1) + a_dst.unsqueeze(2), conv.negative_slope)[..., 0]
        logits = logits.masked_fill(adj == 0, float("-inf"))
        return logits.softmax(dim=-1), adj
