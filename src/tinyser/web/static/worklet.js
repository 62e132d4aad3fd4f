// AudioWorklet: the microphone's float samples -> 16-bit little-endian PCM, posted in chunks.
class PCM16Sender extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.size = (options.processorOptions && options.processorOptions.chunk) || 4800;
    this.buf = new Int16Array(this.size);
    this.n = 0;
  }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      for (let k = 0; k < channel.length; k++) {
        const v = Math.max(-1, Math.min(1, channel[k]));
        this.buf[this.n++] = v < 0 ? Math.round(v * 32768) : Math.round(v * 32767);
        if (this.n === this.size) {
          this.port.postMessage(this.buf.buffer, [this.buf.buffer]);
          this.buf = new Int16Array(this.size);
          this.n = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("pcm16-sender", PCM16Sender);
