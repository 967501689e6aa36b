"""TF-MOT's per-channel clustering, vectorized.

Cluster-preserving QAT keeps each Conv2D kernel's clusters per output channel
(`ClusteringAlgorithmPerChannel`), and builds its lookups with a Python loop over the channels
inside the training graph: several ops per channel, and their gradients. A MobileNetV2 at 32 px
(10,900 kernel channels) had not finished building that graph after 8 minutes, and a ResNet50
(27,600 channels) held 16 GB after 20 minutes. Here the same lookups are one `argmin` and one
batched `gather` over all channels: the same indices and clustered weights. Channels-first
kernels and averaged centroid gradients keep TF-MOT's own loop.
"""

from __future__ import annotations

from typing import Any


def vectorize(clustering_algorithm: Any) -> None:
    """Give `clustering_algorithm.ClusteringAlgorithmPerChannel` vectorized lookups (once)."""
    import tensorflow as tf

    per_channel = clustering_algorithm.ClusteringAlgorithmPerChannel
    if getattr(per_channel, "vectorized", False):
        return
    looped_indices, looped_weight = (
        per_channel.get_pulling_indices,
        per_channel.get_clustered_weight,
    )
    summed = clustering_algorithm.GradientAggregation.SUM

    def vectorizable(self: Any, weight: Any) -> bool:
        return self.data_format != "channels_first" and len(weight.shape) == 4

    def get_pulling_indices(self: Any, weight: Any) -> Any:
        """Per element of an (H, W, I, C) kernel, its channel's nearest centroid."""
        if not vectorizable(self, weight):
            return looped_indices(self, weight)
        distances = tf.abs(tf.expand_dims(weight, -1) - self.cluster_centroids)  # (.., C, K)
        return tf.argmin(distances, axis=-1)

    def get_clustered_weight(self: Any, pulling_indices: Any, original_weight: Any) -> Any:
        """Each element's centroid, with TF-MOT's straight-through gradient."""
        aggregation = self.cluster_gradient_aggregation
        if not vectorizable(self, original_weight) or aggregation != summed:
            return looped_weight(self, pulling_indices, original_weight)
        by_channel = tf.transpose(pulling_indices, perm=(3, 0, 1, 2))  # (C, H, W, I)
        gathered = tf.gather(self.cluster_centroids, by_channel, batch_dims=1)
        clustered = tf.transpose(gathered, perm=(1, 2, 3, 0))
        return self.add_gradient_to_original_weight(clustered, tf.identity(original_weight))

    per_channel.get_pulling_indices = get_pulling_indices
    per_channel.get_clustered_weight = get_clustered_weight
    per_channel.vectorized = True
