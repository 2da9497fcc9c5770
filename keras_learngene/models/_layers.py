"""The integral layers (units), stems and head pieces of the library's ancestries.

Every unit is one Keras layer, so a model built from them can be cut into units
by name and put back together by calling the layers in order. Each layer's
`get_config()` returns exactly its `__init__` arguments.
"""

import keras
from keras import layers, ops

_PACKAGE = "keras_learngene"
# Keras' default 0.99 lags badly after the short trainings Learngene relies on
# (a pseudo descendant, few-shot descendants); 0.9 tracks within a few dozen steps.
BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PatchEmbedding(layers.Layer):
    """ViT stem: non-overlapping patches, a linear projection, an optional
    class token and a learned position embedding.

    Args:
        patch_size: side of the square patches, in pixels.
        hidden_dim: width of the token embeddings.
        use_class_token: prepend a learned class token.
        **kwargs: standard `keras.layers.Layer` arguments.

    Input shape `(batch, height, width, channels)`; output shape
    `(batch, tokens, hidden_dim)`, `tokens = (height // patch) * (width // patch)`
    (+1 with a class token).
    """

    def __init__(self, patch_size=4, hidden_dim=64, use_class_token=True, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.use_class_token = use_class_token
        self.projection = layers.Conv2D(
            hidden_dim, patch_size, strides=patch_size, name="projection", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        _, height, width, _ = input_shape
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"PatchEmbedding: image size {height}x{width} is not a multiple of "
                f"patch_size={self.patch_size}; pick an image size divisible by it."
            )
        self.grid = (height // self.patch_size, width // self.patch_size)
        self.projection.build(input_shape)
        tokens = self.grid[0] * self.grid[1] + int(self.use_class_token)
        if self.use_class_token:
            self.class_token = self.add_weight(
                shape=(1, 1, self.hidden_dim), initializer="zeros", name="class_token"
            )
        self.position_embedding = self.add_weight(
            shape=(1, tokens, self.hidden_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="position_embedding",
        )

    def call(self, images):
        x = self.projection(images)
        x = ops.reshape(x, (-1, self.grid[0] * self.grid[1], self.hidden_dim))
        if self.use_class_token:
            token = ops.broadcast_to(
                ops.cast(self.class_token, x.dtype), (ops.shape(x)[0], 1, self.hidden_dim)
            )
            x = ops.concatenate([token, x], axis=1)
        return x + ops.cast(self.position_embedding, x.dtype)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        tokens = (height // self.patch_size) * (width // self.patch_size)
        return (batch, tokens + int(self.use_class_token), self.hidden_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "patch_size": self.patch_size,
            "hidden_dim": self.hidden_dim,
            "use_class_token": self.use_class_token,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TransformerBlock(layers.Layer):
    """A pre-norm transformer encoder block: one ViT unit.

    `x + MHA(LN(x))`, then `x + MLP(LN(x))` with a GELU MLP.

    Args:
        num_heads: attention heads; the input width must be divisible by it.
        mlp_dim: hidden width of the MLP.
        dropout: dropout rate inside the block.
        **kwargs: standard `keras.layers.Layer` arguments.
    """

    def __init__(self, num_heads=4, mlp_dim=128, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.dropout = dropout
        dtype = self.dtype_policy  # sublayers compute in the block's precision
        self.norm1 = layers.LayerNormalization(epsilon=1e-6, name="norm1", dtype=dtype)
        self.norm2 = layers.LayerNormalization(epsilon=1e-6, name="norm2", dtype=dtype)
        self.mlp_in = layers.Dense(mlp_dim, activation="gelu", name="mlp_in", dtype=dtype)
        self.drop = layers.Dropout(dropout, dtype=dtype)

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(
                f"TransformerBlock: width {width} is not divisible by num_heads="
                f"{self.num_heads}; choose num_heads dividing the width."
            )
        self.attention = layers.MultiHeadAttention(
            self.num_heads, width // self.num_heads, dropout=self.dropout, name="attention",
            dtype=self.dtype_policy,
        )
        self.mlp_out = layers.Dense(width, name="mlp_out", dtype=self.dtype_policy)
        self.norm1.build(input_shape)
        self.norm2.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.mlp_in.build(input_shape)
        self.mlp_out.build(tuple(input_shape[:-1]) + (self.mlp_dim,))

    def call(self, x, training=None):
        y = self.norm1(x)
        x = x + self.drop(self.attention(y, y, training=training), training=training)
        y = self.mlp_out(self.drop(self.mlp_in(self.norm2(x)), training=training))
        return x + self.drop(y, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ConvBlock(layers.Layer):
    """Conv 3x3 + batch norm + ReLU, optionally followed by 2x2 max pooling:
    one VGG-style unit (and the CNN stem).

    Args:
        filters: output channels.
        pool: halve the spatial size with 2x2 max pooling after the activation.
        **kwargs: standard `keras.layers.Layer` arguments.
    """

    def __init__(self, filters=32, pool=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.pool = pool
        self.conv = layers.Conv2D(filters, 3, padding="same", use_bias=False, name="conv",
                                  dtype=self.dtype_policy)
        self.norm = layers.BatchNormalization(name="norm", momentum=BN_MOMENTUM,
                                              dtype=self.dtype_policy)

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.norm.build(tuple(input_shape[:-1]) + (self.filters,))

    def call(self, x, training=None):
        x = ops.relu(self.norm(self.conv(x), training=training))
        if self.pool:
            x = ops.max_pool(x, 2, strides=2, padding="valid")
        return x

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        if self.pool:
            height = None if height is None else height // 2
            width = None if width is None else width // 2
        return (batch, height, width, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "pool": self.pool}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResidualBlock(layers.Layer):
    """A basic residual block (two 3x3 convs with batch norm), one ResNet unit.

    A 1x1 projection on the shortcut is added when the stride or the channel
    count changes.

    Args:
        filters: output channels.
        strides: stride of the first conv (2 halves the spatial size).
        **kwargs: standard `keras.layers.Layer` arguments.
    """

    def __init__(self, filters=32, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides
        dtype = self.dtype_policy  # sublayers compute in the block's precision
        self.conv1 = layers.Conv2D(
            filters, 3, strides=strides, padding="same", use_bias=False, name="conv1",
            dtype=dtype,
        )
        self.norm1 = layers.BatchNormalization(name="norm1", momentum=BN_MOMENTUM, dtype=dtype)
        self.conv2 = layers.Conv2D(filters, 3, padding="same", use_bias=False, name="conv2",
                                   dtype=dtype)
        self.norm2 = layers.BatchNormalization(name="norm2", gamma_initializer="zeros",
                                               momentum=BN_MOMENTUM, dtype=dtype)

    def build(self, input_shape):
        batch, height, width, channels = input_shape
        out_shape = self.compute_output_shape(input_shape)
        self.conv1.build(input_shape)
        self.norm1.build(out_shape)
        self.conv2.build(out_shape)
        self.norm2.build(out_shape)
        self.shortcut = None
        if self.strides != 1 or channels != self.filters:
            self.shortcut = layers.Conv2D(
                self.filters, 1, strides=self.strides, use_bias=False, name="shortcut",
                dtype=self.dtype_policy,
            )
            self.shortcut.build(input_shape)

    def call(self, x, training=None):
        y = ops.relu(self.norm1(self.conv1(x), training=training))
        y = self.norm2(self.conv2(y), training=training)
        skip = x if self.shortcut is None else self.shortcut(x)
        return ops.relu(y + skip)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape

        def down(size):
            return None if size is None else -(-size // self.strides)

        return (batch, down(height), down(width), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TokenPooling(layers.Layer):
    """Pools transformer tokens to one vector: the class token or the mean.

    Args:
        mode: `"class"` (first token) or `"mean"` (mean over tokens).
        **kwargs: standard `keras.layers.Layer` arguments.
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("class", "mean"):
            raise ValueError(f"TokenPooling: mode must be 'class' or 'mean', got {mode!r}.")
        self.mode = mode

    def call(self, x):
        return x[:, 0] if self.mode == "class" else ops.mean(x, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
