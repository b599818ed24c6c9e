# Writes masked_lstm.json: Keras 3 LSTM outputs and gradients on a padded batch behind Masking(0). Run with a Python that has keras and tensorflow.
import os, json
os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"
import numpy as np, keras, tensorflow as tf
from keras import layers
units, feat, T = 3, 2, 5
x = np.array([[[0.5,-0.2],[0.1,0.3],[-0.4,0.6],[0.2,0.2],[0.7,-0.1]],
              [[0.3,0.1],[-0.5,0.4],[0.6,-0.3],[0,0],[0,0]],
              [[-0.2,0.5],[0,0],[0,0],[0,0],[0,0]]], dtype=np.float32)
inp = keras.Input(shape=(T, feat))
m = layers.Masking(mask_value=0.0)(inp)
seq = layers.LSTM(units, return_sequences=True)(m)
last = layers.LSTM(units)(m)
model = keras.Model(inp, [seq, last])
lstm_seq, lstm_last = model.layers[2], model.layers[3]
k = (np.arange(feat*4*units).reshape(feat, 4*units) % 7 - 3).astype(np.float32) * 0.1
r = (np.arange(units*4*units).reshape(units, 4*units) % 5 - 2).astype(np.float32) * 0.15
b = (np.arange(4*units) % 3 - 1).astype(np.float32) * 0.05
for l in (lstm_seq, lstm_last): l.set_weights([k, r, b])
xs = tf.constant(x)
with tf.GradientTape() as tape:
    s, l = model(xs)
    loss = tf.reduce_sum(s * s)
grads = tape.gradient(loss, [v.value for v in lstm_seq.trainable_weights])
out = {"units": units, "input": x.flatten().tolist(), "shape": list(x.shape), "kernel": k.flatten().tolist(),
       "recurrent_kernel": r.flatten().tolist(), "bias": b.flatten().tolist(),
       "sequences": np.array(s).flatten().tolist(), "last": np.array(l).flatten().tolist(),
       "loss": "sum of squares of every sequence output (masked steps included, as Keras outputs them)",
       "grad_kernel": np.array(grads[0]).flatten().tolist(), "grad_recurrent_kernel": np.array(grads[1]).flatten().tolist(),
       "grad_bias": np.array(grads[2]).flatten().tolist(), "keras": keras.__version__}
json.dump(out, open("masked_lstm.json","w"))
print(np.array(s)[1], np.array(l))
