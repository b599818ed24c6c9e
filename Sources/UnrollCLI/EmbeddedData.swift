/// Data sets compiled into the tool, so that a fresh clone runs every example with no files beside it.
public enum EmbeddedData {
    /// The first month of ``airlinePassengers``: January 1949.
    public static let airlineFirstYear = 1949

    /// Monthly totals of international airline passengers, in thousands, January 1949 to December 1960
    /// (144 values): the classic Box & Jenkins (1976) series, with a rising trend and a yearly season whose
    /// swing grows with the level.
    public static let airlinePassengers: [Float] = [
        112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118, // 1949
        115, 126, 141, 135, 125, 149, 170, 170, 158, 133, 114, 140, // 1950
        145, 150, 178, 163, 172, 178, 199, 199, 184, 162, 146, 166, // 1951
        171, 180, 193, 181, 183, 218, 230, 242, 209, 191, 172, 194, // 1952
        196, 196, 236, 235, 229, 243, 264, 272, 237, 211, 180, 201, // 1953
        204, 188, 235, 227, 234, 264, 302, 293, 259, 229, 203, 229, // 1954
        242, 233, 267, 269, 270, 315, 364, 347, 312, 274, 237, 278, // 1955
        284, 277, 317, 313, 318, 374, 413, 405, 355, 306, 271, 306, // 1956
        315, 301, 356, 348, 355, 422, 465, 467, 404, 347, 305, 336, // 1957
        340, 318, 362, 348, 363, 435, 491, 505, 404, 359, 310, 337, // 1958
        360, 342, 406, 396, 420, 472, 548, 559, 463, 407, 362, 405, // 1959
        417, 391, 419, 461, 472, 535, 622, 606, 508, 461, 390, 432, // 1960
    ]

    /// Returns the `"YYYY-MM"` label of month `index` of ``airlinePassengers`` (0 is `"1949-01"`).
    public static func airlineMonth(_ index: Int) -> String {
        let month = index % 12 + 1
        return "\(airlineFirstYear + index / 12)-\(month < 10 ? "0" : "")\(month)"
    }

    /// The opening of chapter 1 of Lewis Carroll's *Alice's Adventures in Wonderland* (1865, public domain),
    /// in plain ASCII: the corpus of the character-level text generation example.
    public static let aliceOpening = """
        Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing to \
        do: once or twice she had peeped into the book her sister was reading, but it had no pictures or \
        conversations in it, "and what is the use of a book," thought Alice "without pictures or conversations?"

        So she was considering in her own mind (as well as she could, for the hot day made her feel very sleepy \
        and stupid), whether the pleasure of making a daisy-chain would be worth the trouble of getting up and \
        picking the daisies, when suddenly a White Rabbit with pink eyes ran close by her.

        There was nothing so very remarkable in that; nor did Alice think it so very much out of the way to hear \
        the Rabbit say to itself, "Oh dear! Oh dear! I shall be late!" (when she thought it over afterwards, it \
        occurred to her that she ought to have wondered at this, but at the time it all seemed quite natural); \
        but when the Rabbit actually took a watch out of its waistcoat-pocket, and looked at it, and then \
        hurried on, Alice started to her feet, for it flashed across her mind that she had never before seen a \
        rabbit with either a waistcoat-pocket, or a watch to take out of it, and burning with curiosity, she ran \
        across the field after it, and fortunately was just in time to see it pop down a large rabbit-hole under \
        the hedge.

        In another moment down went Alice after it, never once considering how in the world she was to get out \
        again.

        The rabbit-hole went straight on like a tunnel for some way, and then dipped suddenly down, so suddenly \
        that Alice had not a moment to think about stopping herself before she found herself falling down a very \
        deep well.

        Either the well was very deep, or she fell very slowly, for she had plenty of time as she went down to \
        look about her and to wonder what was going to happen next. First, she tried to look down and make out \
        what she was coming to, but it was too dark to see anything; then she looked at the sides of the well, \
        and noticed that they were filled with cupboards and book-shelves; here and there she saw maps and \
        pictures hung upon pegs. She took down a jar from one of the shelves as she passed; it was labelled \
        "ORANGE MARMALADE", but to her great disappointment it was empty: she did not like to drop the jar for \
        fear of killing somebody underneath, so managed to put it into one of the cupboards as she fell past it.

        "Well!" thought Alice to herself, "after such a fall as this, I shall think nothing of tumbling down \
        stairs! How brave they'll all think me at home! Why, I wouldn't say anything about it, even if I fell \
        off the top of the house!" (Which was very likely true.)

        Down, down, down. Would the fall never come to an end? "I wonder how many miles I've fallen by this \
        time?" she said aloud. "I must be getting somewhere near the centre of the earth. Let me see: that would \
        be four thousand miles down, I think--" (for, you see, Alice had learnt several things of this sort in \
        her lessons in the schoolroom, and though this was not a very good opportunity for showing off her \
        knowledge, as there was no one to listen to her, still it was good practice to say it over) "--yes, \
        that's about the right distance--but then I wonder what Latitude or Longitude I've got to?" (Alice had \
        no idea what Latitude was, or Longitude either, but thought they were nice grand words to say.)

        Presently she began again. "I wonder if I shall fall right through the earth! How funny it'll seem to \
        come out among the people that walk with their heads downward! The Antipathies, I think--" (she was \
        rather glad there was no one listening, this time, as it didn't sound at all the right word) "--but I \
        shall have to ask them what the name of the country is, you know. Please, Ma'am, is this New Zealand or \
        Australia?" (and she tried to curtsey as she spoke--fancy curtseying as you're falling through the air! \
        Do you think you could manage it?) "And what an ignorant little girl she'll think me for asking! No, \
        it'll never do to ask: perhaps I shall see it written up somewhere."

        Down, down, down. There was nothing else to do, so Alice soon began talking again. "Dinah'll miss me \
        very much to-night, I should think!" (Dinah was the cat.) "I hope they'll remember her saucer of milk at \
        tea-time. Dinah my dear! I wish you were down here with me! There are no mice in the air, I'm afraid, \
        but you might catch a bat, and that's very like a mouse, you know. But do cats eat bats, I wonder?" And \
        here Alice began to get rather sleepy, and went on saying to herself, in a dreamy sort of way, "Do cats \
        eat bats? Do cats eat bats?" and sometimes, "Do bats eat cats?" for, you see, as she couldn't answer \
        either question, it didn't much matter which way she put it.
        """
}
