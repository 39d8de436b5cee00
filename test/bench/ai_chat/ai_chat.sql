SELECT celaest.ai_chat('[{"role":"user","content":"hi"}]', NULL, '00000000-0000-4000-8000-0000000000b1');
