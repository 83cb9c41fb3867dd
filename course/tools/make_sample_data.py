"""Write the course's bundled sample of Vietnamese student feedback (UIT-VSFC schema).

The sentences are composed here from short phrases written for the course; none is copied
from UIT-VSFC. Columns and label coding follow the hub dataset
`uitnlp/vietnamese_students_feedback` so one loader serves both:
sentence (lower-case, spaces around punctuation, like the real corpus),
sentiment 0 negative / 1 neutral / 2 positive, topic 0 lecturer / 1 training_program /
2 facility / 3 others. Proportions roughly follow the real corpus: neutral is rare (~4 %).

Run from the repository root: `python course/tools/make_sample_data.py` (deterministic).
"""

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "utils" / "samples"
NEG, NEU, POS = 0, 1, 2
LECTURER, PROGRAM, FACILITY, OTHERS = 0, 1, 2, 3

SUBJECTS = {
    LECTURER: ["thầy", "cô", "giảng viên", "thầy giáo", "cô giáo", "giảng viên thực hành", "cô trợ giảng"],
    PROGRAM: ["môn học", "chương trình học", "đề cương môn học", "nội dung môn này", "giáo trình", "bài tập về nhà"],
    FACILITY: ["phòng học", "máy chiếu", "phòng máy", "wifi của trường", "máy lạnh", "bàn ghế trong lớp"],
}
PREDICATES = {
    (LECTURER, POS): ["dạy rất nhiệt tình", "giảng bài dễ hiểu", "rất vui tính và thân thiện",
                      "luôn giải đáp thắc mắc của sinh viên", "cho nhiều ví dụ thực tế",
                      "chuẩn bị bài giảng kỹ lưỡng", "truyền đạt kiến thức rõ ràng",
                      "hướng dẫn bài tập rất chi tiết", "nhiệt tình , dễ thương =)", "dạy hay , tận tâm"],
    (LECTURER, NEG): ["nói quá nhanh , khó theo kịp", "giảng bài khó hiểu", "hay đến lớp trễ",
                      "ít tương tác với sinh viên", "chỉ đọc slide", "chấm điểm không rõ ràng",
                      "nói nhỏ , ngồi cuối lớp không nghe được", "hay cho nghỉ học đột xuất",
                      "không trả lời email của sinh viên", "giải thích qua loa"],
    (LECTURER, NEU): ["dạy lớp em từ học kỳ trước", "dạy buổi sáng thứ hai", "dạy cả lý thuyết lẫn thực hành"],
    (PROGRAM, POS): ["rất bổ ích", "có nhiều kiến thức thực tế", "được sắp xếp hợp lý",
                     "giúp em hiểu rõ hơn về ngành", "cập nhật kiến thức mới"],
    (PROGRAM, NEG): ["quá nặng so với số tín chỉ", "lý thuyết nhiều , thực hành ít", "trùng lặp với môn trước",
                     "thời lượng quá ngắn", "khó và thiếu tài liệu tham khảo"],
    (PROGRAM, NEU): ["có bốn tín chỉ", "gồm lý thuyết và thực hành", "học vào học kỳ hai"],
    (FACILITY, POS): ["sạch sẽ , thoáng mát", "hoạt động tốt", "đầy đủ và hiện đại"],
    (FACILITY, NEG): ["quá nóng", "thường xuyên bị hỏng", "chậm , hay mất kết nối", "quá chật", "cũ và ồn"],
    (FACILITY, NEU): ["ở tầng ba", "mới được thay trong học kỳ này"],
}
OTHERS_SENTENCES = {
    POS: ["cảm ơn nhà trường .", "ok hết .", "em rất thích môi trường học ở đây .",
          "các bạn trong lớp hỗ trợ nhau rất tốt .", "hoạt động ngoại khóa rất vui ."],
    NEG: ["thủ tục đăng ký học phần rất rườm rà .", "trang web của trường hay bị lỗi khi đăng ký môn .",
          "bãi giữ xe quá đông vào giờ cao điểm .", "thông báo lịch thi quá trễ ."],
    NEU: ["em không có ý kiến .", "không có gì thêm .", "em chưa có nhận xét gì .", "bình thường .",
          "mong khoa tổ chức thêm hội thảo .", "em học lớp buổi chiều ."],
}
ENDINGS = [" .", " ạ .", " !", " ."]
# Target mix, roughly UIT-VSFC's table of topic x sentiment (percent of all sentences).
MIX = {(LECTURER, POS): 34, (LECTURER, NEG): 26, (LECTURER, NEU): 1.5, (PROGRAM, POS): 4, (PROGRAM, NEG): 15,
       (PROGRAM, NEU): 1, (FACILITY, POS): 1, (FACILITY, NEG): 5, (FACILITY, NEU): 0.5,
       (OTHERS, POS): 5, (OTHERS, NEG): 4, (OTHERS, NEU): 1}
SPLITS = {"train": 320, "validation": 60, "test": 120}


def candidates(topic, sentiment):
    """Every sentence the phrase lists can make for one (topic, sentiment) cell."""
    if topic == OTHERS:
        return list(OTHERS_SENTENCES[sentiment])
    out = []
    for subj in SUBJECTS[topic]:
        for pred in PREDICATES[(topic, sentiment)]:
            for end in ENDINGS:
                out.append(f"{subj} {pred}{end}")
    return sorted(set(out))


def main():
    """Split every (topic, sentiment) pool between the splits first, so no sentence is in two splits."""
    rng = random.Random(2024)
    parts = {split: [] for split in SPLITS}
    for (topic, sentiment), pct in MIX.items():
        pool = candidates(topic, sentiment)
        rng.shuffle(pool)
        # Each split gets its own slice of the pool, in proportion to its size (at least one sentence).
        bounds, start = {}, 0
        for i, (split, n) in enumerate(SPLITS.items()):
            later = len(SPLITS) - 1 - i                 # splits still to serve, one sentence each at least
            share = len(pool) - start if later == 0 else \
                min(max(1, round(len(pool) * n / sum(SPLITS.values()))), len(pool) - start - later)
            bounds[split] = pool[start:start + share]
            start += share
        for split, n in SPLITS.items():
            sub = bounds[split]
            k = max(1, round(n * pct / 100))
            # Small cells (the "others" topic) repeat a sentence inside a split, as the real corpus
            # repeats "ok hết ."; never across splits.
            parts[split] += [{"sentence": sub[i % len(sub)], "sentiment": sentiment, "topic": topic} for i in range(k)]
    OUT.mkdir(parents=True, exist_ok=True)
    seen = {}
    for split, n in SPLITS.items():
        part = parts[split]
        rng.shuffle(part)
        # Rounding the mix can leave a split a few rows off its size: trim or top up from its own rows.
        part = (part * 2)[:n] if len(part) < n else part[:n]
        for r in part:
            assert seen.setdefault(r["sentence"], split) == split, f"{r['sentence']!r} is in two splits"
        with open(OUT / f"vsfc_{split}.jsonl", "w", encoding="utf-8") as fh:
            for r in part:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        counts = [sum(r["sentiment"] == k for r in part) for k in (NEG, NEU, POS)]
        print(f"{split}: {len(part)} sentences, negative/neutral/positive = {counts}")


# ---------------------------------------------------------------------------------------------
# MedMCQA-style sample: questions written for the course, with the hub schema of
# `openlifescienceai/medmcqa` (id, question, opa..opd, cop 0..3 -> A..D, choice_type, exp,
# subject_name, topic_name). Like the hub, the test split hides its answers (cop = -1).
# Each entry: (subject, topic, question, correct option, three distractors, explanation).
MCQ = [
    ("Biochemistry", "Vitamins", "Scurvy is caused by deficiency of which vitamin?", "Vitamin C",
     ["Vitamin A", "Vitamin B12", "Vitamin D"], "Vitamin C is needed to hydroxylate proline in collagen."),
    ("Physiology", "Heart", "Which chamber of the heart pumps oxygenated blood into the aorta?", "Left ventricle",
     ["Right atrium", "Right ventricle", "Left atrium"], "The left ventricle ejects into the aorta."),
    ("Physiology", "Endocrine pancreas", "Insulin is secreted by which cells of the pancreatic islets?", "Beta cells",
     ["Alpha cells", "Delta cells", "PP cells"], "Alpha cells make glucagon, delta cells somatostatin."),
    ("Anatomy", "Upper limb", "Wrist drop follows injury to which nerve?", "Radial nerve",
     ["Ulnar nerve", "Median nerve", "Musculocutaneous nerve"], "The radial nerve supplies the wrist extensors."),
    ("Pharmacology", "Emergency drugs", "The first-line drug for anaphylactic shock is:", "Intramuscular adrenaline",
     ["Atropine", "Intravenous hydrocortisone", "Oral cetirizine"], "Adrenaline reverses vasodilation and bronchospasm."),
    ("Microbiology", "Viral exanthems", "Koplik spots are seen in:", "Measles",
     ["Mumps", "Rubella", "Chickenpox"], "Koplik spots on the buccal mucosa precede the measles rash."),
    ("Medicine", "Diabetes", "Diabetes is diagnosed when fasting plasma glucose is at least:", "126 mg/dL",
     ["100 mg/dL", "110 mg/dL", "200 mg/dL"], "126 mg/dL (7.0 mmol/L) fasting; 200 mg/dL applies to random glucose."),
    ("Anatomy", "Lower limb", "The longest bone in the human body is the:", "Femur",
     ["Humerus", "Tibia", "Fibula"], "The femur is the longest and strongest bone."),
    ("Microbiology", "Mycobacteria", "Tuberculosis is caused by:", "Mycobacterium tuberculosis",
     ["Mycobacterium leprae", "Clostridium tetani", "Corynebacterium diphtheriae"], "M. leprae causes leprosy."),
    ("Microbiology", "Immunology", "Which immunoglobulin crosses the placenta?", "IgG",
     ["IgA", "IgM", "IgE"], "IgG is actively transported across the placenta."),
    ("Pathology", "Blood banking", "Red cells of which group can be given to a patient of any ABO/Rh group?", "O negative",
     ["AB positive", "A positive", "B negative"], "O negative red cells carry no A, B or D antigens."),
    ("Physiology", "Pituitary", "Central diabetes insipidus is due to deficiency of:", "Antidiuretic hormone",
     ["Aldosterone", "Insulin", "Oxytocin"], "Without ADH the collecting ducts cannot reabsorb water."),
    ("Pharmacology", "Poisoning", "The antidote for paracetamol poisoning is:", "N-acetylcysteine",
     ["Naloxone", "Flumazenil", "Atropine"], "N-acetylcysteine restores glutathione."),
    ("Pharmacology", "Poisoning", "The antidote for an opioid overdose is:", "Naloxone",
     ["Flumazenil", "Physostigmine", "Protamine"], "Naloxone is a competitive opioid antagonist."),
    ("Physiology", "Kidney", "The functional unit of the kidney is the:", "Nephron",
     ["Neuron", "Alveolus", "Hepatocyte"], "Each kidney has about a million nephrons."),
    ("Physiology", "Respiration", "Gas exchange in the lungs takes place in the:", "Alveoli",
     ["Bronchi", "Trachea", "Pleura"], "Alveolar walls are thin and richly supplied with capillaries."),
    ("Biochemistry", "Coagulation", "Which clotting factors need vitamin K for their synthesis?", "II, VII, IX and X",
     ["I, V, VIII and XIII", "III, IV, XI and XII", "VIII, IX, XI and XII"], "Vitamin K carboxylates factors II, VII, IX, X."),
    ("Ophthalmology", "Nutrition", "Bitot's spots are a sign of deficiency of:", "Vitamin A",
     ["Vitamin C", "Vitamin D", "Vitamin B1"], "Bitot's spots are conjunctival xerosis from vitamin A deficiency."),
    ("Pediatrics", "Nutrition", "Rickets in children is caused by deficiency of:", "Vitamin D",
     ["Vitamin A", "Vitamin K", "Vitamin E"], "Vitamin D deficiency impairs mineralisation of growing bone."),
    ("Gynaecology & Obstetrics", "Ectopic pregnancy", "The most common site of ectopic pregnancy is the:",
     "Ampulla of the fallopian tube", ["Ovary", "Cervix", "Isthmus of the fallopian tube"], "About 70 % are ampullary."),
    ("Biochemistry", "Haemoglobin", "Adult haemoglobin (HbA) is made of:", "Two alpha and two beta chains",
     ["Two alpha and two gamma chains", "Two alpha and two delta chains", "Four beta chains"],
     "Alpha2-gamma2 is HbF, alpha2-delta2 is HbA2."),
    ("Physiology", "Heart", "The normal pacemaker of the heart is the:", "Sinoatrial node",
     ["Atrioventricular node", "Bundle of His", "Purkinje fibres"], "The SA node has the fastest intrinsic rate."),
    ("Anatomy", "Cranial nerves", "The lateral rectus muscle is supplied by the:", "Abducens nerve",
     ["Oculomotor nerve", "Trochlear nerve", "Trigeminal nerve"], "LR6 SO4: lateral rectus VI, superior oblique IV."),
    ("Pharmacology", "Antiepileptics", "A drug of choice for absence seizures in children is:", "Ethosuximide",
     ["Phenytoin", "Carbamazepine", "Phenobarbital"], "Phenytoin and carbamazepine can worsen absence seizures."),
    ("Medicine", "Electrolytes", "Tall peaked T waves on the ECG suggest:", "Hyperkalaemia",
     ["Hypokalaemia", "Hypocalcaemia", "Hyponatraemia"], "Hypokalaemia flattens T waves and brings U waves."),
    ("Physiology", "Gastrointestinal", "Vitamin B12 is mainly absorbed in the:", "Terminal ileum",
     ["Stomach", "Duodenum", "Colon"], "B12 bound to intrinsic factor is absorbed in the terminal ileum."),
    ("Physiology", "Nerve", "Which of the following is NOT true of myelinated nerve fibres?",
     "They conduct impulses more slowly than unmyelinated fibres of the same diameter",
     ["Conduction is saltatory", "Ion currents flow mainly at the nodes of Ranvier",
      "They use less energy per impulse than unmyelinated fibres"], "Myelinated fibres conduct faster, not slower."),
    ("Microbiology", "Enteric bacteria", "Cholera is caused by:", "Vibrio cholerae",
     ["Shigella dysenteriae", "Salmonella Typhi", "Escherichia coli"], "Cholera toxin raises cAMP in enterocytes."),
    ("Physiology", "Reproduction", "Ovulation is triggered by a surge of:", "Luteinising hormone",
     ["Prolactin", "Progesterone", "Oxytocin"], "The mid-cycle LH surge triggers ovulation."),
    ("Physiology", "Blood", "The most abundant white blood cells in adult blood are:", "Neutrophils",
     ["Lymphocytes", "Monocytes", "Eosinophils"], "Neutrophils are about 40-70 % of leucocytes."),
    ("Anatomy", "Heart", "The mitral valve lies between the:", "Left atrium and left ventricle",
     ["Right atrium and right ventricle", "Left ventricle and aorta", "Right ventricle and pulmonary trunk"],
     "The mitral (bicuspid) valve guards the left atrioventricular orifice."),
    ("Physiology", "Acid-base", "The normal pH of arterial blood is:", "7.35 to 7.45",
     ["6.80 to 7.00", "7.00 to 7.20", "7.50 to 7.70"], "Below 7.35 is acidaemia, above 7.45 alkalaemia."),
]
MCQ_SPLITS = {"train": 18, "validation": 10, "test": 4}


def write_medmcqa():
    """Place each correct answer at a rotating letter (balanced A-D) and write three splits."""
    import uuid
    rows = []
    for i, (subject, topic, question, correct, wrong, exp) in enumerate(MCQ):
        cop = (i * 3 + 1) % 4                       # balanced over A..D, not in question order
        options = list(wrong)
        options.insert(cop, correct)
        rows.append({"id": str(uuid.uuid5(uuid.NAMESPACE_URL, question)), "question": question,
                     "opa": options[0], "opb": options[1], "opc": options[2], "opd": options[3], "cop": cop,
                     "choice_type": "single", "exp": exp, "subject_name": subject, "topic_name": topic})
    start = 0
    for split, n in MCQ_SPLITS.items():
        part = rows[start:start + n]
        start += n
        if split == "test":                         # like the hub: answers hidden
            part = [dict(r, cop=-1, exp=None) for r in part]
        with open(OUT / f"medmcqa_{split}.jsonl", "w", encoding="utf-8") as fh:
            for r in part:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        letters = "".join("ABCD"[r["cop"]] if r["cop"] >= 0 else "?" for r in part)
        print(f"medmcqa {split}: {len(part)} questions, answers {letters}")


if __name__ == "__main__":
    main()
    write_medmcqa()
