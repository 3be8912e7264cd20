"""Make the tiny Llama, its tokenizer and two LoRA adapters the real-vLLM tests serve.

Nothing comes from a model hub: the tokenizer is trained here on generated text, the weights
are random. Every random choice is seeded, so two runs produce the same files (up to
serialisation metadata), and the tests can rely on the vocabulary and the chat template.

Usage: python make_tiny.py OUT_DIR
Writes OUT_DIR/model (config, safetensors weights, tokenizer, chat template) and
OUT_DIR/lora-a, OUT_DIR/lora-b (peft adapters of rank 8 on q_proj/v_proj whose outputs
differ from the base model's and from each other's).
"""

import os
import random
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

SEED = 20261207
VOCAB_SIZE = 512
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
# A plain chat template: role marker, content, end marker; the generation prompt opens the
# assistant turn. vLLM renders chat requests through it.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
WORDS = (
    "the a gateway routes request model token cache prefix block server pool endpoint "
    "envoy picker score queue running waiting lora adapter canary rollout weight header "
    "stream chunk usage prompt completion chat answer question hello world quick brown fox "
    "jumps over lazy dog one two three four five six seven eight nine ten and or not is "
    "are was were be to of in on at by for with from that this it as"
).split()


def corpus(rng, lines=4000):
    """Generated sentences from a small word list plus digits and punctuation."""
    for _ in range(lines):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 16))]
        if rng.random() < 0.3:
            words.append(str(rng.randint(0, 9999)))
        yield " ".join(words) + rng.choice([".", "?", "!", ","])


def make_tokenizer(out):
    rng = random.Random(SEED)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus(rng)), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=4096,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def make_model(out, tokenizer):
    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        # The CPU attention backend accepts head sizes 32, 64, 80, ... only.
        head_dim=32,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="bfloat16",
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    return model


def make_lora(model_dir, out, seed):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    base = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.bfloat16)
    # init_lora_weights=False draws B at random too, so the adapter changes the output.
    config = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(base, config)
    peft_model.save_pretrained(out, safe_serialization=True)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny.py OUT_DIR")
    out = sys.argv[1]
    model_dir = os.path.join(out, "model")
    os.makedirs(model_dir, exist_ok=True)
    tokenizer = make_tokenizer(model_dir)
    model = make_model(model_dir, tokenizer)
    params = sum(p.numel() for p in model.parameters())
    make_lora(model_dir, os.path.join(out, "lora-a"), SEED + 1)
    make_lora(model_dir, os.path.join(out, "lora-b"), SEED + 2)
    print(f"tiny model: {params} parameters, vocabulary {VOCAB_SIZE}, in {out}")


if __name__ == "__main__":
    main()
